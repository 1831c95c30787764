// leadscore web app: charts, and the model editor's checks as you type.
// Every page works without this script (tables under the charts, a plain
// text area for the model); it only adds to them.
"use strict";
(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const post = (url, body, accept) => fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": accept || "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const colours = ["#b3261e", "#8a4b00", "#1f4fb5", "#3d4a5c", "#1b6b34"];

  function chart(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas || !window.Chart) return;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false } } }, config.options || {});
    new window.Chart(canvas, config);
  }

  // -- the contact card: the score over time -----------------------------------------
  const series = document.getElementById("score-series");
  if (series) {
    const points = JSON.parse(series.textContent).map(([ms, y]) => ({ x: ms, y: y }));
    chart("score-chart", {
      type: "line",
      data: { datasets: [{ data: points, borderColor: "#1f4fb5", backgroundColor: "rgba(31,79,181,.12)",
        fill: true, pointRadius: 0, tension: 0 }] },
      options: { scales: { x: { type: "linear", ticks: { callback: day, maxTicksLimit: 6 } },
        y: { beginAtZero: true } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { title: (items) => day(items[0].parsed.x) } } } },
    });
  }

  // -- reports ---------------------------------------------------------------------------
  const report = document.getElementById("report-data");
  if (report) {
    const data = JSON.parse(report.textContent);
    const bars = (id, rows, index, label, colour) => chart(id, {
      type: "bar",
      data: { labels: rows.map((r) => r[0]), datasets: [{ label: label, data: rows.map((r) => r[index]),
        backgroundColor: colour || rows.map((_, i) => colours[i % colours.length]) }] },
    });
    bars("chart-histogram", data.histogram, 1, "contacts", "#1f4fb5");
    bars("chart-bands", data.bands, 2, "conversion %");
    bars("chart-funnel", data.funnel, 1, "contacts", "#1b6b34");
    bars("chart-ageing", data.ageing, 1, "contacts", "#8a4b00");
    chart("chart-pareto", {
      type: "line",
      data: { datasets: [
        { label: "leadscore", data: data.pareto.map(([x, y]) => ({ x: x, y: y })), borderColor: "#b3261e", pointRadius: 2 },
        { label: "random order", data: [{ x: 0, y: 0 }, { x: 100, y: 100 }], borderColor: "#8791a3", borderDash: [4, 4], pointRadius: 0 },
      ] },
      options: { plugins: { legend: { display: true } },
        scales: { x: { type: "linear", min: 0, max: 100, title: { display: true, text: "top % of leads" } },
          y: { min: 0, max: 100, title: { display: true, text: "% of conversions" } } } },
    });
  }

  // -- the model editor ----------------------------------------------------------------
  const area = document.getElementById("document");
  if (!area) return;
  let editor = null;
  if (window.CodeMirror) {
    editor = window.CodeMirror.fromTextArea(area, {
      mode: "yaml", inputStyle: "contenteditable", lineNumbers: true, indentUnit: 2, tabSize: 2, lineWrapping: false,
      gutters: ["errors", "CodeMirror-linenumbers"], screenReaderLabel: "Model document (YAML)",
      // Tab indents; Escape then Tab leaves the editor (keyboard users are not trapped).
      extraKeys: { Tab: (cm) => cm.execCommand("insertSoftTab"), Esc: (cm) => cm.getInputField().blur() },
    });
    window.leadscoreEditor = editor;
  }
  const text = () => (editor ? editor.getValue() : area.value);
  const status = document.getElementById("status");
  const issues = document.getElementById("issues");
  const diff = document.getElementById("diff");
  let marked = [];
  let latest = 0;

  function show(result) {
    marked.forEach((line) => { editor.removeLineClass(line, "background", "cm-error-line"); editor.setGutterMarker(line, "errors", null); });
    marked = [];
    issues.replaceChildren();
    status.className = "status " + (result.valid ? "ok" : "bad");
    status.textContent = result.valid ? "The model is valid." : result.issues.length + " problem" + (result.issues.length === 1 ? "" : "s") + " found.";
    for (const issue of result.issues) {
      const item = document.createElement("li");
      item.dataset.line = issue.line == null ? "" : String(issue.line);
      if (issue.line != null) {
        const jump = document.createElement("button");
        jump.type = "button";
        jump.textContent = "line " + issue.line;
        jump.addEventListener("click", () => {
          if (editor) { editor.focus(); editor.setCursor(issue.line - 1, 0); }
          else { area.focus(); }
        });
        item.append(jump);
        if (editor && issue.line - 1 < editor.lineCount()) {
          const line = issue.line - 1;
          editor.addLineClass(line, "background", "cm-error-line");
          const marker = document.createElement("span");
          marker.className = "error-marker";
          marker.textContent = "●";
          marker.title = issue.message;
          editor.setGutterMarker(line, "errors", marker);
          marked.push(line);
        }
      }
      item.append((issue.path ? issue.path + ": " : "") + issue.message);
      issues.append(item);
    }
    diff.replaceChildren();
    if (!result.changed) diff.textContent = "No changes.";
    for (const line of result.diff) {
      const span = document.createElement("span");
      span.className = line.kind;
      span.textContent = line.text + "\n";
      diff.append(span);
    }
    document.getElementById("activate").disabled = !result.valid || !result.changed;
  }

  async function check() {
    const mine = ++latest;
    const response = await post("/models/validate", { document: text() });
    if (mine !== latest) return; // a newer check is on its way
    if (!response.ok) { status.className = "status bad"; status.textContent = "Could not check the model (" + response.status + ")."; return; }
    show(await response.json());
  }
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(check, 300); };
  if (editor) editor.on("change", soon); else area.addEventListener("input", soon);
  check();

  document.getElementById("run-preview").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    const preview = document.getElementById("preview");
    button.disabled = true;
    preview.textContent = "Replaying the stored events…";
    const response = await post("/models/preview", { document: text(), outcome: document.getElementById("outcome").value }, "text/html");
    preview.innerHTML = response.ok ? await response.text() : "<p class=\"error\">The backtest could not run: fix the model's problems first.</p>";
    button.disabled = false;
  });

  document.getElementById("activate").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    const box = document.getElementById("activation");
    const bar = document.getElementById("activation-progress");
    const said = document.getElementById("activation-status");
    button.disabled = true;
    box.hidden = false;
    bar.removeAttribute("value"); // indeterminate until the first progress report
    said.textContent = "Activating…";
    const response = await post("/models/activate", { document: text() });
    if (!response.ok) { said.textContent = "Activation failed (" + response.status + ")."; button.disabled = false; return; }
    const started = await response.json();
    // The background rescore's progress, as GET /v1/activations/{id} tells it.
    let state = started.activation;
    for (;;) {
      bar.max = Math.max(state.total, 1); bar.value = state.total ? state.rescored : 1;
      if (state.status !== "running") break;
      said.textContent = "Rescoring: " + state.rescored + " of " + state.total + " contacts.";
      await new Promise((resolve) => setTimeout(resolve, 500));
      state = await (await fetch(started.progress, { credentials: "same-origin" })).json();
    }
    if (state.status === "failed") { said.textContent = "The rescore failed: " + state.error; button.disabled = false; return; }
    said.textContent = "Version " + started.version + " is active" + (state.status === "done" ? " (" + state.rescored + " contacts rescored). " : " (another version has been activated since). ");
    const link = document.createElement("a");
    link.href = "/"; link.textContent = "See the leads";
    said.append(link);
    check();
  });
})();
