// metricsd's live page. Every string from the API (container names,
// images, labels, interfaces: chosen by containers) is set with
// textContent or as an attribute value, never parsed as markup.
"use strict";
(function () {
  var state = { data: null, sort: "name", dir: 1, ref: 0, series: null, timer: 0, refreshes: 0 };
  var tbody = document.querySelector("#containers tbody");
  var status = document.getElementById("status");

  function text(tag, s, cls) {
    var e = document.createElement(tag);
    e.textContent = s;
    if (cls) e.className = cls;
    return e;
  }

  function bytes(v) {
    if (v === null || v === undefined) return "–";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(v < 10 ? 2 : 1) : String(Math.round(v))) + " " + u[i];
  }
  function rate(v) { return v === null || v === undefined ? "–" : bytes(v) + "/s"; }
  function fixed(v, d) { return v === null || v === undefined ? "–" : v.toFixed(d); }
  function count(v) { return v === null || v === undefined ? "–" : String(v); }

  // The value a column sorts by.
  var sortValue = {
    name: function (c) { return c.name; },
    runtime: function (c) { return c.runtime; },
    image: function (c) { return c.image; },
    cpu: function (c) { return c.cpu_percent; },
    mem: function (c) { return c.memory_working_set_bytes; },
    rx: function (c) { return c.net_rx_bytes_per_second; },
    tx: function (c) { return c.net_tx_bytes_per_second; },
    pids: function (c) { return c.pids; },
    oom: function (c) { return c.oom_kills_total; },
    throttle: function (c) { return c.throttled_percent; }
  };

  function compare(a, b) {
    var f = sortValue[state.sort], x = f(a), y = f(b);
    if (x === y) return a.ref - b.ref;
    if (x === null || x === undefined) return 1; // unknown last, either way
    if (y === null || y === undefined) return -1;
    if (typeof x === "string") return state.dir * x.localeCompare(y);
    return state.dir * (x - y);
  }

  function memCell(c) {
    var td = document.createElement("td");
    td.className = "n";
    var lim = c.memory_limit_bytes;
    var s = bytes(c.memory_working_set_bytes) + " / " + (lim === -1 ? "no limit" : bytes(lim));
    td.appendChild(document.createTextNode(s));
    if (lim > 0 && c.memory_working_set_bytes !== null) {
      var m = document.createElement("meter");
      m.min = 0; m.max = lim; m.value = c.memory_working_set_bytes;
      m.low = lim * 0.7; m.high = lim * 0.9; m.optimum = 0;
      td.appendChild(m);
    }
    return td;
  }

  function renderTable() {
    var cs = state.data.containers.slice().sort(compare);
    var rows = document.createDocumentFragment();
    cs.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.dataset.ref = String(c.ref);
      if (c.state === "departed") tr.className = "departed";
      if (c.ref === state.ref) tr.classList.add("selected");
      var name = text("td", c.name, "name");
      name.title = c.pod_name ? c.pod_namespace + "/" + c.pod_name + " · " + c.id : c.id;
      tr.appendChild(name);
      tr.appendChild(text("td", c.runtime + (c.namespace ? " (" + c.namespace + ")" : "")));
      var img = text("td", c.image || "–", "image");
      img.title = c.image;
      tr.appendChild(img);
      tr.appendChild(text("td", fixed(c.cpu_percent, 1) +
        (c.cpu_limit_cores > 0 ? " of " + (c.cpu_limit_cores * 100).toFixed(0) : ""), "n"));
      tr.appendChild(memCell(c));
      tr.appendChild(text("td", rate(c.net_rx_bytes_per_second), "n"));
      tr.appendChild(text("td", rate(c.net_tx_bytes_per_second), "n"));
      tr.appendChild(text("td", count(c.pids) + (c.pids_limit > 0 ? " / " + c.pids_limit : ""), "n"));
      tr.appendChild(text("td", count(c.oom_kills_total), "n"));
      tr.appendChild(text("td", c.throttled_percent === null ? count(c.throttled_periods_total) :
        fixed(c.throttled_percent, 1) + "% (" + c.throttled_periods_total + ")", "n"));
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
    document.querySelectorAll("th[data-key]").forEach(function (th) {
      if (th.dataset.key === state.sort) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }

  function renderDetail() {
    var sec = document.getElementById("detail");
    var c = state.data && state.data.containers.find(function (x) { return x.ref === state.ref; });
    if (!c) { sec.hidden = true; return; }
    sec.hidden = false;
    document.getElementById("detail-name").textContent = c.name + (c.state === "departed" ? " (departed)" : "");
    var dl = document.createDocumentFragment();
    function item(k, v) { if (v) { dl.appendChild(text("dt", k)); dl.appendChild(text("dd", v)); } }
    item("ID", c.id);
    item("Runtime", c.runtime + (c.namespace ? " (" + c.namespace + ")" : ""));
    item("Image", c.image);
    if (c.pod_name) item("Pod", c.pod_namespace + "/" + c.pod_name);
    item("Network", c.network + (c.network_carrier ? " (on " + c.network_carrier + ")" : ""));
    item("Interfaces", c.interfaces.join(", "));
    Object.keys(c.labels).sort().forEach(function (k) { item("Label " + k, c.labels[k] || "\u00a0"); });
    document.getElementById("detail-info").replaceChildren(dl);
    var s = state.series;
    if (!s || s.ref !== c.ref) return;
    draw("chart-cpu", s.t, [{ v: s.cpu_percent, color: "rx" }], function (v) { return v.toFixed(1) + "%"; });
    draw("chart-mem", s.t, [{ v: s.memory_working_set_bytes, color: "rx" }], bytes,
      s.memory_limit_bytes > 0 ? s.memory_limit_bytes : null);
    draw("chart-net", s.t, [{ v: s.net_rx_bytes_per_second, color: "rx" }, { v: s.net_tx_bytes_per_second, color: "tx" }], rate);
    draw("chart-psi", s.t, [{ v: s.psi_cpu_some_avg10, color: "rx" }, { v: s.psi_memory_some_avg10, color: "tx" },
      { v: s.psi_io_some_avg10, color: "io" }], function (v) { return v.toFixed(1) + "%"; });
  }

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim(); }

  // draw plots lines (null values leave gaps) over the times t on a canvas,
  // with the top of the scale and the time span written in its corners. It
  // records what it drew in the canvas's data-points (values drawn), data-max
  // and data-nonzero (values drawn that are not 0) attributes.
  function draw(id, t, lines, fmt, limit) {
    var cv = document.getElementById(id), dpr = window.devicePixelRatio || 1;
    var w = cv.clientWidth || 420, h = cv.clientHeight || 160;
    if (cv.width !== Math.round(w * dpr)) cv.width = Math.round(w * dpr);
    if (cv.height !== Math.round(h * dpr)) cv.height = Math.round(h * dpr);
    var g = cv.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    var max = 0, drawn = 0, nonzero = 0;
    lines.forEach(function (l) { l.v.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    if (limit && limit < max * 4) max = Math.max(max, limit);
    var top = max > 0 ? max * 1.1 : 1, padL = 4, padT = 16, padB = 14;
    var t0 = t.length ? t[0] : 0, t1 = t.length ? t[t.length - 1] : 1, span = Math.max(t1 - t0, 1);
    function x(ti) { return padL + (w - 2 * padL) * (ti - t0) / span; }
    function y(v) { return h - padB - (h - padT - padB) * v / top; }
    g.strokeStyle = cssVar("line"); g.lineWidth = 1;
    g.beginPath(); g.moveTo(padL, y(0) + 0.5); g.lineTo(w - padL, y(0) + 0.5); g.stroke();
    if (limit && limit <= top) {
      g.setLineDash([4, 3]); g.strokeStyle = cssVar("muted");
      g.beginPath(); g.moveTo(padL, y(limit)); g.lineTo(w - padL, y(limit)); g.stroke(); g.setLineDash([]);
    }
    lines.forEach(function (l) {
      g.strokeStyle = cssVar(l.color); g.lineWidth = 1.5; g.beginPath();
      var pen = false;
      for (var i = 0; i < l.v.length; i++) {
        var v = l.v[i];
        if (v === null) { pen = false; continue; }
        drawn++; if (v !== 0) nonzero++;
        if (pen) g.lineTo(x(t[i]), y(v)); else { g.moveTo(x(t[i]), y(v)); pen = true; }
        if (l.v.length === 1 || (i > 0 && l.v[i - 1] === null && (i + 1 >= l.v.length || l.v[i + 1] === null))) g.fillRect(x(t[i]) - 1, y(v) - 1, 2, 2);
      }
      g.stroke();
    });
    g.fillStyle = cssVar("muted"); g.font = "11px system-ui, sans-serif";
    g.fillText(fmt(max) + " max", padL, 11);
    var secs = Math.round(span / 1000);
    g.fillText(t.length > 1 ? "last " + (secs >= 120 ? Math.round(secs / 60) + " min" : secs + " s") : "", padL, h - 2);
    cv.dataset.points = String(drawn);
    cv.dataset.nonzero = String(nonzero);
    cv.dataset.max = String(max);
  }

  function get(url) {
    return fetch(url, { cache: "no-store", credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  function refresh() {
    get("api/v1/containers").then(function (d) {
      state.data = d;
      if (!state.ref || !d.containers.some(function (c) { return c.ref === state.ref; })) {
        var first = d.containers.slice().sort(compare)[0];
        state.ref = first ? first.ref : 0;
      }
      renderTable();
      status.className = "";
      status.textContent = d.containers.length + " containers · snapshot " +
        (d.time ? new Date(d.time).toLocaleTimeString() : "pending") +
        (d.interval_seconds ? " · every " + d.interval_seconds.toFixed(1) + " s" : "") +
        (d.containers_not_kept ? " · " + d.containers_not_kept + " not kept (max " + d.max_containers + ")" : "");
      return state.ref ? get("api/v1/series?ref=" + state.ref).then(function (s) { state.series = s; }, function () { state.series = null; }) : null;
    }).then(function () {
      if (state.data) renderDetail();
      state.refreshes++;
      document.body.dataset.refreshes = String(state.refreshes);
    }, function (e) {
      status.className = "error";
      status.textContent = "not updated: " + e.message;
    }).then(schedule);
  }

  function schedule() {
    var iv = state.data && state.data.interval_seconds ? state.data.interval_seconds : 1;
    state.timer = setTimeout(refresh, Math.min(Math.max(iv, 1), 10) * 1000);
  }

  document.querySelectorAll("th[data-key]").forEach(function (th) {
    th.addEventListener("click", function () {
      var k = th.dataset.key;
      if (state.sort === k) state.dir = -state.dir;
      else { state.sort = k; state.dir = (k === "name" || k === "runtime" || k === "image") ? 1 : -1; }
      if (state.data) renderTable();
    });
  });
  tbody.addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr");
    if (!tr) return;
    state.ref = Number(tr.dataset.ref);
    state.series = null;
    clearTimeout(state.timer);
    refresh();
  });
  refresh();
})();
