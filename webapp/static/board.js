// The board's only script: sends Telegram's initData with every request and swaps views.
// Works without telegram-web-app.js: initData and the theme are then read from the URL
// fragment (tgWebAppData, tgWebAppThemeParams) that Telegram opens the page with.
(function () {
  "use strict";
  var main = document.getElementById("view");
  var launch = new URLSearchParams(location.hash.replace(/^#/, ""));
  var tg = window.Telegram && window.Telegram.WebApp;

  function initData() {
    tg = window.Telegram && window.Telegram.WebApp;
    if (tg && tg.initData) return tg.initData;
    return launch.get("tgWebAppData") || "";
  }

  function applyTheme() {
    var params = (tg && tg.themeParams) || null;
    if (!params || !Object.keys(params).length) {
      try { params = JSON.parse(launch.get("tgWebAppThemeParams") || "{}"); } catch (e) { params = {}; }
    }
    Object.keys(params).forEach(function (key) {
      document.documentElement.style.setProperty(
        "--tg-theme-" + key.replace(/_/g, "-"), params[key]);
    });
  }

  function show(body) {
    main.innerHTML = body;
    window.scrollTo(0, 0);
    // A chart is drawn apart (it takes longer than the page) and fetched with initData.
    main.querySelectorAll("img[data-chart]").forEach(function (img) {
      fetch("api/" + img.getAttribute("data-chart"), { headers: { Authorization: "tma " + initData() } })
        .then(function (response) { if (!response.ok) throw response.status; return response.blob(); })
        .then(function (blob) { img.src = URL.createObjectURL(blob); img.removeAttribute("height"); })
        .catch(function () { img.remove(); });
    });
  }

  function request(path, options) {
    options = options || {};
    options.headers = Object.assign({ Authorization: "tma " + initData() }, options.headers || {});
    return fetch("api/" + path, options)
      .then(function (response) { return response.text(); })
      .then(show)
      .catch(function () { show('<section class="notice"><p>⚠️</p></section>'); });
  }

  function go(view) {
    if (history.replaceState) history.replaceState(null, "", "?v=" + encodeURIComponent(view) + location.hash);
    return request(view);
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-view]");
    if (!link || link.tagName === "FORM") return;
    event.preventDefault();
    go(link.getAttribute("data-view"));
  });

  document.addEventListener("change", function (event) {
    if (event.target.hasAttribute("data-autosubmit")) {
      var form = event.target.form;
      if (event.target.name === "prefecture" && form.county) form.county.value = "";
      form.requestSubmit ? form.requestSubmit() : form.submit();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) data.append(event.submitter.name, event.submitter.value);
    if (form.hasAttribute("data-action")) {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      // A file goes as multipart/form-data; the form says what to show meanwhile.
      var upload = form.enctype === "multipart/form-data";
      if (form.hasAttribute("data-progress")) {
        var note = document.createElement("p");
        note.className = "flash progress";
        note.setAttribute("role", "status");
        note.textContent = form.getAttribute("data-progress");
        form.after(note);
      }
      request(form.getAttribute("data-action"),
        { method: "POST", body: upload ? data : new URLSearchParams(data) });
    } else if (form.hasAttribute("data-view-form")) {
      var query = new URLSearchParams();
      data.forEach(function (value, key) { if (value) query.append(key, value); });
      go(form.getAttribute("data-view-form") + "?" + query.toString());
    }
  });

  applyTheme();
  if (tg && tg.ready) { tg.ready(); tg.expand && tg.expand(); }
  window.addEventListener("load", function () {
    tg = window.Telegram && window.Telegram.WebApp;
    applyTheme();
    if (tg && tg.onEvent) tg.onEvent("themeChanged", applyTheme);
  });
  var start = new URLSearchParams(location.search).get("v") || "alerts";
  go(start);
})();
