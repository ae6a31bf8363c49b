"""Posting places offered at registration: prefectures, counties and seat elevations."""

import pytest

from services.postings import MAX_CODE_LENGTH, County, Postings, load_postings


@pytest.fixture(scope="module")
def postings() -> Postings:
    return load_postings()


def _all_counties(postings: Postings) -> list[County]:
    return [c for p in postings.prefectures() for c in p.counties]


def test_three_plateau_prefectures_with_exact_county_counts(postings: Postings) -> None:
    counts = {p.code: len(postings.counties(p.code)) for p in postings.prefectures()}
    assert counts["ganzi"] == 18
    assert counts["aba"] == 13
    assert counts["liangshan"] == 17
    plateau = [p.code for p in postings.prefectures() if not p.low_altitude]
    assert plateau == ["ganzi", "aba", "liangshan"]


def test_prefecture_seats(postings: Postings) -> None:
    seats = {
        p.code: [c.code for c in p.counties if c.is_prefecture_seat] for p in postings.prefectures()
    }
    assert seats["ganzi"] == ["ganzi.kangding"]
    assert seats["aba"] == ["aba.barkam"]
    assert seats["liangshan"] == ["liangshan.xichang"]
    assert seats["zhejiang"] == []


@pytest.mark.parametrize(
    ("code", "elevation"),
    [
        ("ganzi.kangding", 2560),
        ("ganzi.litang", 4014),
        ("ganzi.luding", 1321),
        ("aba.barkam", 2615),
        ("liangshan.xichang", 1542),
    ],
)
def test_known_seat_elevations(postings: Postings, code: str, elevation: int) -> None:
    county = postings.county(code)
    assert county is not None
    assert county.seat_elevation_m == elevation
    assert postings.needs_altitude(code) is False


@pytest.mark.parametrize(
    "code",
    [
        "ganzi.xinlong",
        "ganzi.dege",
        "ganzi.shiqu",
        "aba.mao",
        "liangshan.muli",
        "liangshan.zhaojue",
    ],
)
def test_blank_elevations_are_not_invented_and_registration_asks(
    postings: Postings, code: str
) -> None:
    county = postings.county(code)
    assert county is not None
    assert county.seat_elevation_m is None
    assert postings.needs_altitude(code) is True


def test_county_average_goes_into_note_not_elevation(postings: Postings) -> None:
    shiqu = postings.county("ganzi.shiqu")
    assert shiqu is not None
    assert shiqu.seat_elevation_m is None
    assert shiqu.note_en is not None and "4,200" in shiqu.note_en
    assert shiqu.note_zh is not None and "4200" in shiqu.note_zh


def test_zhejiang_postings_are_low_altitude(postings: Postings) -> None:
    zhejiang = postings.prefecture("zhejiang")
    assert zhejiang is not None
    assert zhejiang.low_altitude is True
    units = postings.counties("zhejiang")
    assert {"zhejiang.hangzhou", "zhejiang.ningbo", "zhejiang.lishui"} <= {u.code for u in units}
    for unit in units:
        assert unit.low_altitude is True
        assert unit.seat_elevation_m is None
        assert postings.needs_altitude(unit.code) is False
    assert postings.name("zhejiang.hangzhou", "zh-Hans") == "杭州"


def test_every_code_fits_in_callback_data(postings: Postings) -> None:
    codes = [p.code for p in postings.prefectures()] + [c.code for c in _all_counties(postings)]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert code.isascii()
        assert len(code) <= MAX_CODE_LENGTH
        # e.g. "reg:county:<code>" must stay well under Telegram's 64-byte limit
        assert len(f"reg:county:{code}".encode()) <= 64


def test_names_in_both_languages(postings: Postings) -> None:
    for prefecture in postings.prefectures():
        assert postings.name(prefecture.code, "zh-Hans")
        assert postings.name(prefecture.code, "en")
        for county in prefecture.counties:
            assert county.prefecture_code == prefecture.code
            assert postings.name(county.code, "zh-Hans") == county.name_zh
            assert postings.name(county.code, "en") == county.name_en
            assert county.name_zh != county.name_en
    assert postings.name("ganzi.kangding", "zh-Hans") == "康定市"
    assert postings.name("ganzi.kangding", "en") == "Kangding"
    assert postings.name("ganzi", "zh-Hans") == "甘孜藏族自治州"
    assert postings.name("ganzi", "en", short=True) == "Ganzi"


def test_unknown_codes(postings: Postings) -> None:
    assert postings.prefecture("nowhere") is None
    assert postings.county("ganzi.nowhere") is None
    assert postings.counties("nowhere") == []
    assert postings.needs_altitude("ganzi.nowhere") is False
    with pytest.raises(KeyError):
        postings.name("nowhere", "en")


def test_load_postings_is_cached() -> None:
    assert load_postings() is load_postings()
