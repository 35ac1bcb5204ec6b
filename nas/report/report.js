/* densenas report: draws the charts and the trial table from the JSON the page embeds (nas/report/page.py).

   nas-trials: every trial once, column by column (nas/report/table.py); a text column whose values repeat
   comes as {levels, codes}; `columns` are the table's, `details` what a trial's details row adds.
   nas-charts: the plotly template once, then one spec per chart: a "front" spec names the trial-table rows
   of each trace (nas/report/figures.py FrontChart), a "figure" spec is a plain plotly figure.
   tests/report/page_parse.py builds the front traces exactly as frontTraces() does below.
   Everything shown from the study is escaped here (esc) or set as text (textContent), never parsed as HTML.
   When every chart is drawn, body[data-plotted] says how many; errors land in body[data-errors], and
   body[data-widths] holds the widths the page was laid out at (widths()), so a test sees a table overflow. */
(function () {
  "use strict";

  function readJSON(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  function decode(column) {
    if (column && !Array.isArray(column) && column.levels) {
      return column.codes.map(function (c) { return c === null ? null : column.levels[c]; });
    }
    return column;
  }

  var raw = readJSON("nas-trials");
  var T = {};
  Object.keys(raw.data).forEach(function (key) { T[key] = decode(raw.data[key]); });
  var ROWS = raw.rows, COLUMNS = raw.columns, DETAILS = raw.details || [], GROUPS = raw.groups;
  var GLYPHS = {
    circle: "\u25CF", square: "\u25A0", diamond: "\u25C6", "triangle-up": "\u25B2", "triangle-down": "\u25BC",
    pentagon: "\u2B1F", hexagon: "\u2B22", star: "\u2605", cross: "\u271A", x: "\u2716"
  };

  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function has(value) { return value !== null && value !== undefined; }

  function col(key) { return T[key] || []; }

  function group(r) { return col("baseline")[r] || col("mode")[r] || "unknown"; }

  function look(g) { return GROUPS[g] || { colour: "black", symbol: "x", baseline: false }; }

  // Numbers as the page shows them: integers with thousands separators, other numbers to 4 significant digits.
  function show(value) {
    if (!has(value)) return "";
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return String(Number(value.toPrecision(4)));
  }

  function three(value) { return String(Number(value.toPrecision(3))); }

  // In units, by a column's `unit` (nas/report/table.py UNITS): counts in K/M/G, seconds, ms, bytes in KiB/MiB/GiB.
  function scaled(value, steps, last) {
    var rounded = Math.abs(Number(value.toPrecision(3)));
    for (var i = 0; i < steps.length; i++) {
      if (rounded >= steps[i][0]) return three(value / steps[i][0]) + steps[i][1];
    }
    return last(value);
  }
  var UNITS = {
    count: function (v) { return scaled(v, [[1e9, "G"], [1e6, "M"], [1e3, "K"]], show); },
    ms: function (v) { return three(v) + " ms"; },
    seconds: function (v) {
      return Math.abs(v) < 1000 ? three(v) + " s" : Math.abs(v) < 6000 ? three(v / 60) + " min" : three(v / 3600) + " h";
    },
    bytes: function (v) {
      return scaled(v, [[Math.pow(2, 30), " GiB"], [Math.pow(2, 20), " MiB"], [1024, " KiB"]], function (b) { return show(b) + " B"; });
    }
  };

  function format(c, value) {
    if (typeof value === "number" && UNITS[c.unit]) return UNITS[c.unit](value);
    return show(value);
  }

  function percent(value) { return (100 * value).toFixed(1); }

  // "91.2% (88.0-93.6)": the accuracy and its 95% interval, or the accuracy alone without one.
  function accuracy(r) {
    var acc = col("val_accuracy")[r], low = col("val_accuracy_low")[r], high = col("val_accuracy_high")[r];
    if (!has(acc)) return "";
    if (!has(low) || !has(high)) return show(acc);
    return percent(acc) + "% (" + percent(low) + "-" + percent(high) + ")";
  }

  function hover(r, same) {
    var g = group(r), lines = ["<b>trial " + T.number[r] + "</b>: " + esc(g) + (look(g).baseline ? " (baseline)" : "")];
    lines.push("validation accuracy: " + accuracy(r));
    COLUMNS.concat(DETAILS).forEach(function (c) {
      if ((c.kind === "cost" || c.kind === "knob") && has(col(c.key)[r])) lines.push(esc(c.key) + ": " + esc(format(c, col(c.key)[r])));
    });
    if (same) {
      var more = same[0] - same[1].length;
      lines.push("same result: " + (same[0] === 1 ? "trial " : "trials ") + same[1].join(", ") + (more > 0 ? " and " + more.toLocaleString("en-US") + " more" : ""));
    }
    return lines.join("<br>");
  }

  // ----- charts --------------------------------------------------------------------------------------------

  function pick(values, rows) { return rows.map(function (r) { return values[r]; }); }

  function frontTraces(spec) {
    var x = col(spec.x), y = col(spec.y), low = col("val_accuracy_low"), high = col("val_accuracy_high");
    var same = spec.same || {}, traces = [];
    function hovers(rows) { return rows.map(function (r) { return hover(r, same[String(r)]); }); }
    if (spec.dominated.length) {
      var d = spec.dominated;
      traces.push({
        type: "scatter", mode: "markers", name: "dominated within its mode", x: pick(x, d), y: pick(y, d),
        marker: {
          color: d.map(function (r) { return look(group(r)).colour; }),
          symbol: d.map(function (r) { return look(group(r)).symbol; }),
          size: 7, opacity: 0.45
        },
        hovertext: hovers(d), hoverinfo: "text", showlegend: false
      });
    }
    // Baselines close in cost would print their names over each other: alternate above and below, by cost.
    var named = spec.fronts.filter(function (f) { return f.rows.length && look(f.group).baseline; });
    named.sort(function (a, b) { return x[a.rows[0]] - x[b.rows[0]]; });
    var below = {};
    named.forEach(function (f, i) { below[f.group] = i % 2 === 1; });
    spec.fronts.forEach(function (front) {
      var rows = front.rows, st = look(front.group);
      if (!rows.length) return;
      var mode = (rows.length > 1 ? "lines+markers" : "markers") + (st.baseline ? "+text" : "");
      var trace = {
        type: "scatter", mode: mode, name: esc(front.group), legendgroup: esc(front.group), x: pick(x, rows),
        y: pick(y, rows), line: { color: st.colour, shape: "hv", width: 1.5 },
        marker: { color: st.colour, symbol: st.symbol, size: st.baseline ? 16 : 10, line: { color: "white", width: 1 } },
        hovertext: hovers(rows), hoverinfo: "text"
      };
      if (st.baseline) {
        trace.text = rows.map(function () { return esc(front.group); });
        // Baselines are mostly the largest networks: the label reads leftwards.
        trace.textposition = below[front.group] ? "bottom left" : "top left";
        trace.cliponaxis = false;  // and is never cut at the plot's edge
      }
      traces.push(trace);
      var bars = rows.filter(function (r) { return has(low[r]) && has(high[r]); });
      if (bars.length) {
        traces.push({
          type: "scatter", mode: "markers", name: esc(front.group + " 95% intervals"), legendgroup: esc(front.group),
          x: pick(x, bars), y: pick(y, bars), marker: { size: 0, color: st.colour },
          error_y: {
            type: "data", symmetric: false, color: st.colour, thickness: 1.5, width: 5,
            array: bars.map(function (r) { return high[r] - y[r]; }),
            arrayminus: bars.map(function (r) { return y[r] - low[r]; })
          },
          showlegend: false, hoverinfo: "skip"
        });
      }
    });
    // Baselines over a budget of the study: trained as references, so drawn, but hollow and on no front.
    (spec.over || []).forEach(function (pair) {
      var r = pair[0], g = group(r), st = look(g);
      traces.push({
        type: "scatter", mode: "markers+text", name: esc(g) + " (over " + pair[1] + ")", x: [x[r]], y: [y[r]],
        marker: { color: st.colour, symbol: st.symbol + "-open", size: 16, line: { width: 2 } },  // an open symbol's colour is its outline
        text: [esc(g) + " (over " + pair[1] + ")"], textposition: "top left", cliponaxis: false,
        hovertext: [hover(r, same[String(r)]) + "<br><b>over the study's " + pair[1] + "</b>: trained as a reference, on no front"],
        hoverinfo: "text"
      });
    });
    traces.push({
      type: "scatter", mode: "lines+markers", name: spec.overallName || "overall Pareto front", x: pick(x, spec.overall),
      y: pick(y, spec.overall), line: { color: "black", shape: "hv", width: 2.5 },
      marker: { size: 16, symbol: "circle-open", color: "black", line: { width: 2 } }, hoverinfo: "skip"
    });
    return traces;
  }

  function drawCharts() {
    var all = readJSON("nas-charts"), template = all.template, charts = all.charts, done = 0;
    var config = { displaylogo: false, responsive: true };
    var drawing = charts.map(function (spec, i) {
      var element = document.getElementById("chart-" + i);
      try {
        var traces = spec.kind === "front" ? frontTraces(spec) : spec.data;
        var layout = Object.assign({ template: template }, spec.layout);
        return Promise.resolve(Plotly.newPlot(element, traces, layout, config)).then(function () {
          element.dataset.traces = String(traces.length);
          element.dataset.points = String(traces.reduce(function (n, t) { return n + (t.x ? t.x.length : 0); }, 0));
          done += 1;
        }, function (error) { window.nasError("chart " + i + ": " + error); });
      } catch (error) {
        window.nasError("chart " + i + ": " + error);
        return Promise.resolve();
      }
    });
    Promise.all(drawing).then(function () {
      widths();
      document.body.dataset.plotted = String(done);
    });
  }

  // The window's width and, in px, how wide and tall the page is laid out and where each table's right edge is:
  // a table wider than the window hides columns off its right edge (or behind a scroll bar), which is what the
  // browser test catches.
  function widths() {
    var d = document.documentElement, out = { window: d.clientWidth, page: d.scrollWidth, height: d.scrollHeight, tables: [] };
    var heading = "";
    document.querySelectorAll("h1, h2, h3, table").forEach(function (e) {
      if (e.tagName !== "TABLE") heading = e.textContent;
      else out.tables.push([e.id || heading, Math.ceil(e.getBoundingClientRect().right)]);  // [name, right edge]
    });
    document.body.dataset.widths = JSON.stringify(out);
  }

  // ----- the trial table -----------------------------------------------------------------------------------

  var table = document.getElementById("trials");
  var state = { page: 0, key: null, dir: 1, group: "", status: "", text: "" };
  var pageRows = Number(document.getElementById("trial-controls").dataset.pageRows) || 100;
  var opened = {};
  var haystack = null;
  // A column of numbers only is right-aligned, header and cells (block_config "3,3" and stem "cifar" are text).
  var numeric = COLUMNS.map(function (c) {
    if (c.kind === "accuracy" || c.kind === "cost") return true;
    if (c.kind !== "knob" && c.kind !== "number") return false;
    return col(c.key).every(function (v) { return !has(v) || typeof v === "number"; });
  });

  function cellText(c, r) {
    if (c.kind === "accuracy") return accuracy(r);
    if (c.kind === "network") return group(r);
    if (c.kind === "status") return col("status")[r] || "";
    return format(c, col(c.key)[r]);
  }

  function search(r) {
    if (haystack === null) {
      haystack = [];
      for (var i = 0; i < ROWS; i++) {
        haystack.push(COLUMNS.map(function (c) { return cellText(c, i); }).concat([col("reason")[i] || ""]).join(" ").toLowerCase());
      }
    }
    return haystack[r];
  }

  function sortValue(c, r) {
    if (c.kind === "network") return group(r);
    if (c.kind === "status") return col("status")[r];
    return col(c.key)[r];
  }

  function visible() {
    var rows = [], text = state.text.toLowerCase();
    for (var r = 0; r < ROWS; r++) {
      if (state.group && group(r) !== state.group) continue;
      if (state.status && col("status")[r] !== state.status) continue;
      if (text && search(r).indexOf(text) < 0) continue;
      rows.push(r);
    }
    if (state.key !== null) {
      var c = COLUMNS[state.key], dir = state.dir;
      rows.sort(function (a, b) {
        var x = sortValue(c, a), y = sortValue(c, b);
        if (!has(x) || !has(y)) return has(x) ? -1 : has(y) ? 1 : a - b;  // blanks last either way
        var order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return order !== 0 ? dir * order : a - b;
      });
    }
    return rows;
  }

  function cell(c, r) {
    var td = document.createElement("td");
    if (c.kind === "trial") {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "open";
      button.textContent = (opened[r] ? "\u25BE " : "\u25B8 ") + T.number[r];
      button.addEventListener("click", function () { opened[r] = !opened[r]; draw(); });
      td.appendChild(button);
    } else if (c.kind === "status") {
      var status = col("status")[r] || "", reason = col("reason")[r], short = col("short_reason")[r];
      var tag = document.createElement("span");
      tag.className = "tag " + status.replace(/[^a-z_]/g, "");
      tag.textContent = status;
      td.appendChild(tag);
      if (reason) {
        td.appendChild(document.createTextNode(" " + (short || reason)));
        td.title = reason;
        td.className = "reason";
      }
    } else if (c.kind === "network") {
      var g = group(r), glyph = document.createElement("span");
      glyph.className = "glyph";
      glyph.style.color = look(g).colour;
      glyph.textContent = GLYPHS[look(g).symbol] || "\u25CF";
      td.appendChild(glyph);
      td.appendChild(document.createTextNode(" " + g));
      td.className = "network";
    } else {
      td.textContent = cellText(c, r);
      if (numeric[COLUMNS.indexOf(c)]) td.className = "num";
      if (c.unit && has(col(c.key)[r])) td.title = show(col(c.key)[r]);  // the exact number behind "2.77M"
    }
    return td;
  }

  function details(r) {
    var tr = document.createElement("tr"), td = document.createElement("td"), list = document.createElement("dl");
    tr.className = "details";
    td.colSpan = COLUMNS.length;
    var facts = [
      ["reason", col("reason")[r]],
      ["reused the result of trial", col("reused_from")[r]],
      ["feasible", col("feasible")[r]],
      ["mode", col("mode")[r]],
      ["baseline", col("baseline")[r]]
    ];
    DETAILS.forEach(function (c) {
      var value = col(c.key)[r], text = cellText(c, r);
      facts.push([c.label, c.unit === "count" && text !== show(value) ? text + " (" + show(value) + ")" : text]);  // 16.8K (16,818)
    });
    facts.forEach(function (fact) {
      if (!has(fact[1]) || fact[1] === "") return;
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = fact[0];
      dd.textContent = show(fact[1]);
      list.appendChild(dt);
      list.appendChild(dd);
    });
    td.appendChild(list);
    tr.appendChild(td);
    return tr;
  }

  function header() {
    var tr = document.createElement("tr");
    COLUMNS.forEach(function (c, i) {
      var th = document.createElement("th");
      th.textContent = c.label.replace(/_/g, "_\u200B");  // long knob names may wrap after an underscore
      if (numeric[i]) th.className = "num";
      if (c.title) th.title = c.title;
      if (state.key === i) th.dataset.dir = state.dir > 0 ? "asc" : "desc";
      th.addEventListener("click", function () {
        state.dir = state.key === i ? -state.dir : 1;
        state.key = i;
        state.page = 0;
        draw();
      });
      tr.appendChild(th);
    });
    table.tHead.replaceChildren(tr);
  }

  function draw() {
    var rows = visible(), pages = Math.max(1, Math.ceil(rows.length / pageRows));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    var first = state.page * pageRows, shown = rows.slice(first, first + pageRows), body = document.createDocumentFragment();
    shown.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.dataset.row = String(r);
      COLUMNS.forEach(function (c) { tr.appendChild(cell(c, r)); });
      body.appendChild(tr);
      if (opened[r]) body.appendChild(details(r));
    });
    table.tBodies[0].replaceChildren(body);
    header();
    document.getElementById("trial-page").textContent = "page " + (state.page + 1) + " of " + pages;
    var count = rows.length ? "trials " + (first + 1).toLocaleString("en-US") + "-" + (first + shown.length).toLocaleString("en-US") + " of " + rows.length.toLocaleString("en-US") : "no trial matches";
    document.getElementById("trial-count").textContent = count + (rows.length < ROWS ? " (" + ROWS.toLocaleString("en-US") + " in all)" : "");
  }

  function controls() {
    document.getElementById("trial-group").addEventListener("change", function (e) { state.group = e.target.value; state.page = 0; draw(); });
    document.getElementById("trial-status").addEventListener("change", function (e) { state.status = e.target.value; state.page = 0; draw(); });
    document.getElementById("trial-search").addEventListener("input", function (e) { state.text = e.target.value; state.page = 0; draw(); });
    document.querySelectorAll("#trial-controls button[data-go]").forEach(function (button) {
      button.addEventListener("click", function () {
        var go = button.dataset.go;
        state.page = go === "first" ? 0 : go === "prev" ? state.page - 1 : go === "next" ? state.page + 1 : Infinity;
        draw();
      });
    });
  }

  // ----- the small server-drawn tables (ablation, final evaluation): sortable by a click ---------------------

  function sortable() {
    document.querySelectorAll("table.sortable th").forEach(function (th) {
      th.addEventListener("click", function () {
        var tbl = th.closest("table"), body = tbl.tBodies[0], index = th.cellIndex, asc = th.dataset.dir !== "asc";
        tbl.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
        th.dataset.dir = asc ? "asc" : "desc";
        var key = function (row) {
          var c = row.cells[index];
          return c.dataset.sort !== undefined ? c.dataset.sort : c.textContent;
        };
        Array.from(body.rows).sort(function (a, b) {
          var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y), c = (x === "") - (y === "");
          if (c !== 0) return c;
          c = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
          return asc ? c : -c;
        }).forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  controls();
  draw();
  sortable();
  drawCharts();
})();
