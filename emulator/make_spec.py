"""Generate ``botapi_spec.json`` from the machine-readable Bot API description.

The emulator validates every request against a compact extract of the Telegram Bot API:
for each method its parameters (types and required flag) and return types, and for each
object type its fields. Descriptions are dropped, so the extract stays small.

Source: the MIT-licensed ``telegram-bot-api.json`` (see ``LICENSE-telegram-bot-api-spec``,
copied next to the output). Re-run after updating the source::

    python -m emulator.make_spec /path/to/telegram-bot-api.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/data/telegram-bot-api.json")
OUTPUT = HERE / "botapi_spec.json"
LICENSE_OUTPUT = HERE / "LICENSE-telegram-bot-api-spec"


def _fields(entries: list[dict[str, Any]], key: str = "params") -> dict[str, Any]:
    """Fields as ``{key: {name: "Type1|Type2"}, "required": [names]}``."""
    return {
        key: {field["name"]: "|".join(field["types"]) for field in entries},
        "required": [field["name"] for field in entries if field["required"]],
    }


def extract(source: dict[str, Any]) -> dict[str, Any]:
    """Return the compact spec: version, methods (params, returns) and types (fields)."""
    methods = {
        name: {**_fields(method.get("fields", [])), "returns": "|".join(method.get("returns", []))}
        for name, method in source["methods"].items()
    }
    types: dict[str, dict[str, Any]] = {}
    for name, type_ in source["types"].items():
        entry = _fields(type_.get("fields", []), key="fields")
        if type_.get("subtypes"):
            entry["subtypes"] = list(type_["subtypes"])
        types[name] = entry
    return {
        "version": source["version"],
        "release_date": source.get("release_date", ""),
        "source": "telegram-bot-api.json (MIT licence, see LICENSE-telegram-bot-api-spec)",
        "methods": methods,
        "types": types,
    }


def dump(spec: dict[str, Any]) -> str:
    """Serialise with one method/type per line, so regenerations give readable diffs."""

    def compact(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    for key in ("version", "release_date", "source"):
        lines.append(f"{compact(key)}: {compact(spec[key])},")
    for section in ("methods", "types"):
        items = [f"  {compact(k)}: {compact(v)}" for k, v in spec[section].items()]
        closing = "}," if section == "methods" else "}"
        lines.extend([f"{compact(section)}: {{", ",\n".join(items), closing])
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args(argv)
    source_path: Path = args.source
    spec = extract(json.loads(source_path.read_text(encoding="utf-8")))
    OUTPUT.write_text(dump(spec), encoding="utf-8")
    licence = source_path.with_suffix(".LICENSE")
    if licence.exists():
        shutil.copyfile(licence, LICENSE_OUTPUT)
    print(f"wrote {OUTPUT} ({spec['version']}, {len(spec['methods'])} methods)")


if __name__ == "__main__":
    main()
