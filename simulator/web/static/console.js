// The live parts of the console: one EventSource per page, redrawn from each JSON snapshot.
// Everything shown is built with DOM calls and textContent, never innerHTML: the text
// comes from trainees and scenarios.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function shortTime(iso) {
  return iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z") : "—";
}

function shown(value) {
  if (Array.isArray(value)) return value.map(shown).join("; ");
  if (value && typeof value === "object") {
    return value.name ? [value.name, value.title].filter(Boolean).join(", ") : JSON.stringify(value);
  }
  return String(value);
}

// The umpire's and the controller's own event types, as a person names them.
const KINDS = {
  "coop.exercise.started": "exercise started",
  "coop.exercise.ended": "exercise ended",
  "coop.clock.elapsed": "deadline passed",
  "coop.rejection": "submission rejected",
  "coop.note": "controller's note",
  "coop.control": "controller's action",
};

function words(name) {
  return KINDS[name] || String(name || "").replaceAll("_", " ");
}

const token = document.body.dataset.token;

// Redraw a part only when what it shows changed: a heartbeat must not replace the button
// under the user's pointer (a click on a node being replaced is lost).
const drawn = new Map();
function render(id, key, build) {
  const text = JSON.stringify(key);
  if (drawn.get(id) === text) return;
  drawn.set(id, text);
  const nodes = build();
  document.getElementById(id).replaceChildren(...[nodes].flat().filter((n) => n !== null));
}

function withToken(path) {
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function post(path, body) {
  const response = await fetch(withToken(path), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    referrerPolicy: "no-referrer",
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
  if (!response.ok || !data.ok) throw new Error(data.error || response.statusText);
  return data;
}

function connect(path, onState) {
  const conn = document.getElementById("conn");
  const source = new EventSource(withToken(path));
  source.addEventListener("state", (event) => {
    const state = JSON.parse(event.data);
    // Once the run has ended nothing is live any more: the page shows the final state.
    conn.textContent = state.ended ? "final" : "live";
    conn.className = state.ended ? "badge done" : "badge on";
    onState(state);
  });
  source.onerror = () => {
    conn.textContent = "reconnecting…";
    conn.className = "badge off";
  };
}

// The end is final and plain: the mode badge says so, controls that can do nothing go.
function showEnded(state) {
  document.body.classList.toggle("ended", Boolean(state.ended));
  const mode = document.getElementById("mode");
  if (state.ended) mode.textContent = "ended";
}

// The umpire announces its clock once a second; between announcements the page runs it
// on at the announced speed, so a fast exercise's clock does not jump in big steps.
const clock = { base: null, at: 0, speed: 0, paused: true };

function runClock() {
  if (clock.base === null) return;
  const elapsed = clock.paused ? 0 : (performance.now() - clock.at) * clock.speed;
  const now = new Date(clock.base + elapsed).toISOString();
  document.getElementById("clock-time").textContent = shortTime(now);
}

setInterval(runClock, 250);

function showClock(state) {
  clock.base = state.clock.time ? Date.parse(state.clock.time) : null;
  clock.at = performance.now();
  clock.speed = state.clock.speed || 0;
  clock.paused = Boolean(state.clock.paused || state.ended);
  document.getElementById("clock-time").textContent = shortTime(state.clock.time);
  const parts = [];
  if (state.clock.paused) parts.push("paused");
  if (state.clock.speed) parts.push("×" + state.clock.speed);
  document.getElementById("clock-state").textContent = state.ended ? "ended"
    : parts.join(" ") || "running";
  const ended = document.getElementById("ended");
  ended.hidden = !state.ended;
  ended.textContent = state.ended ? "The exercise has ended: " + state.ended : "";
  showEnded(state);
}

// -- the sequence chart of one case ------------------------------------------------

const LANE = 220, TOP = 40, ROW = 34, RULE_LINE = 14, CHAR = 6.6;

// A label centred at x, kept inside the chart: moved in from an edge, and squeezed only
// when it is wider than the whole chart. CHAR is a 12px character's width, near enough.
function label(x, y, text, width, attrs) {
  const wide = text.length * CHAR * ((attrs["font-size"] || 12) / 12);
  const room = width - 8;
  const half = Math.min(wide, room) / 2;
  const at = Math.min(Math.max(x, 4 + half), width - 4 - half);
  const node = svg("text", Object.assign({ x: at, y, "text-anchor": "middle" }, attrs), text);
  if (wide > room) {
    node.setAttribute("textLength", room);
    node.setAttribute("lengthAdjust", "spacingAndGlyphs");
  }
  return node;
}

function sequenceChart(steps) {
  const lanes = [];
  for (const step of steps) {
    for (const who of [step.sender, step.recipient]) {
      if (who && !lanes.includes(who)) lanes.push(who);
    }
  }
  if (lanes.length === 0) lanes.push("umpire");
  // The message type goes above its arrow, each rule it broke on a line of its own
  // below: a row is as tall as its rules need, so no label is clipped or hidden.
  const tops = [];
  let bottom = TOP;
  for (const step of steps) {
    tops.push(bottom);
    bottom += ROW + RULE_LINE * Math.max(step.rules.length - 1, 0);
  }
  const width = Math.max(lanes.length * LANE, 400);
  const height = bottom + 20;
  const x = (who) => LANE / 2 + lanes.indexOf(who) * LANE;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": "sequence chart" });
  const defs = svg("defs");
  for (const [id, colour] of [["arrow", "#1f5fbf"], ["arrow-bad", "#b42318"]]) {
    const marker = svg("marker", { id, viewBox: "0 0 10 10", refX: 10, refY: 5,
      markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: colour }));
    defs.append(marker);
  }
  root.append(defs);
  for (const who of lanes) {
    root.append(svg("text", { x: x(who), y: 18, "text-anchor": "middle", "font-weight": 700 }, who));
    root.append(svg("line", { x1: x(who), y1: 26, x2: x(who), y2: height - 8,
      stroke: "#98a2b3", "stroke-dasharray": "4 4" }));
  }
  steps.forEach((step, index) => {
    const y = tops[index] + 14;
    const bad = step.rules.length > 0;
    const colour = step.desk ? "#5b3f8c" : bad ? "#b42318" : "#1f5fbf";
    const group = svg("g", { class: step.desk ? "desk" : "step", "data-position": step.position });
    let centre = width / 2;
    if (step.desk) {
      group.append(svg("line", { x1: 8, y1: y, x2: width - 8, y2: y, stroke: colour,
        "stroke-dasharray": "2 3" }));
      // A note may be long: it is cut to the chart's width; the tooltip has all of it.
      const fits = Math.floor((width - 8) / CHAR);
      let said = (step.type === "note" ? "✎ note: " : "✎ controller ") + step.gist;
      if (said.length > fits) said = said.slice(0, fits - 1) + "…";
      group.append(label(centre, y - 5, said, width, { fill: colour, "font-size": 12,
        "font-style": "italic" }));
    } else if (step.sender && step.recipient && lanes.includes(step.sender)) {
      const x1 = x(step.sender), x2 = x(step.recipient);
      centre = (x1 + x2) / 2;
      group.append(svg("line", { x1, y1: y, x2, y2: y, stroke: colour, "stroke-width": 2,
        "marker-end": `url(#${bad ? "arrow-bad" : "arrow"})` }));
      group.append(label(centre, y - 5, words(step.type), width, { fill: colour,
        "font-size": 12, class: "kind" }));
    } else {
      group.append(label(centre, y + 4, "⏱ " + words(step.type), width, { fill: colour,
        "font-size": 12, class: "kind" }));
    }
    step.rules.forEach((rule, line) => {
      group.append(label(centre, y + 14 + line * RULE_LINE, "⚠ " + rule, width, {
        fill: colour, "font-size": 11, class: "rule" }));
    });
    group.append(svg("title", {}, `#${step.position} ${shortTime(step.time)} ${step.gist || ""}` +
      (bad ? " — " + step.rules.join(", ") : "")));
    root.append(group);
  });
  return root;
}

// -- the control view ----------------------------------------------------------------

function controlPage() {
  let selected = null;
  let last = null;
  const status = document.getElementById("command-status");

  async function command(body) {
    status.className = "status";
    status.textContent = "sending " + body.command + "…";
    try {
      // The umpire's own answer ("paused at …", "inject … sent at …").
      const answer = await post("/control/command", body);
      status.textContent = answer.detail || body.command + " done";
    } catch (error) {
      status.className = "status error";
      status.textContent = error.message;
    }
  }

  for (const button of document.querySelectorAll("[data-command]")) {
    button.addEventListener("click", () => {
      if (button.dataset.command === "stop" && !confirm("End the exercise for everyone?")) return;
      command({ command: button.dataset.command });
    });
  }
  document.getElementById("btn-speed").addEventListener("click", () => {
    command({ command: "speed", speed: Number(document.getElementById("speed").value) });
  });
  document.getElementById("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = document.getElementById("note-text");
    if (!text.value.trim()) return;
    command({ command: "note", text: text.value }).then(() => { text.value = ""; });
  });

  function draw(state) {
    last = state;
    showClock(state);
    const speed = document.getElementById("speed");
    if (document.activeElement !== speed && state.clock.speed) speed.value = state.clock.speed;
    const live = !state.ended;
    for (const id of ["btn-pause", "btn-resume", "btn-jump", "btn-speed", "btn-stop"]) {
      document.getElementById(id).disabled = !live;
    }
    document.getElementById("btn-pause").disabled = !live || state.clock.paused;
    document.getElementById("btn-resume").disabled = !live || !state.clock.paused;

    const report = document.getElementById("report");
    report.hidden = !(state.report || state.report_error);
    render("report", [state.report, state.report_error], () => state.report
      ? el("a", { href: withToken(state.report), target: "_blank", rel: "noreferrer noopener",
          id: "report-link" }, "After-action report")
      : (state.report_error || ""));

    document.getElementById("violation-count").textContent = state.violations.length;
    render("violations", state.violations, () => state.violations.map((v) =>
      el("li", { class: "sev-" + v.severity, "data-rule": v.rule },
        el("span", { class: "article" }, v.article === "—" ? "Procedure" : "Art. " + v.article),
        " · ", el("code", {}, v.rule), " · ", v.case, v.party ? " · " + v.party : "",
        el("div", { class: "muted" }, shortTime(v.time), " #", v.position, " — ", v.detail))));

    // Only the states cases are in: fourteen mostly empty columns hide the ones that matter.
    const columns = state.states.filter((s) => s.count > 0);
    render("board", [state.cases, selected], () => [
      ...(columns.length ? [] : [el("p", { class: "muted" }, "No case yet.")]),
      ...(state.cases_total > state.cases.length ? [el("p", { class: "muted" },
        `Counts cover all ${state.cases_total} cases; the ${state.cases.length} most recently ` +
        "active are drawn.")] : []),
      ...columns.map((s) =>
      el("div", { class: "column", "data-state": s.state },
        el("h3", {}, words(s.state), " (", s.count, ")"),
        state.cases.filter((c) => c.state === s.state).map((c) =>
          el("div", { class: "card" + (c.id === selected ? " selected" : ""), "data-case": c.id,
              onclick: () => { selected = c.id; draw(last); } },
            el("strong", {}, c.id), el("br"),
            el("span", { class: "muted" }, c.requesting || "?", " → ", c.requested || "?"),
            c.violations ? el("span", { class: "bad" }, "  ⚠ ", c.violations) : null))))]);

    const cases = state.cases;
    if (!selected && cases.length) {
      selected = cases.reduce((a, b) => (a.updated >= b.updated ? a : b)).id;
    }
    const steps = state.steps[selected] || [];
    document.getElementById("chart-case").textContent = selected || "";
    render("chart", steps, () =>
      steps.length ? sequenceChart(steps) : el("p", { class: "muted" }, "No case yet."));

    render("injects", [state.injects, live, state.mode], () => state.injects.map((i) =>
      el("tr", { "data-inject": i.id },
        el("td", {}, i.id), el("td", {}, i.conditioned ? "when its condition holds" : shortTime(i.at)),
        el("td", {}, words(i.kind), " in ", i.case),
        el("td", {}, i.fired ? el("span", { class: "badge" }, "sent")
          : !live ? el("span", { class: "muted" }, "not sent")
          : el("button", { type: "button", disabled: state.mode === "replay",
              onclick: () => command({ command: "inject", inject: i.id }) }, "Send now")))));

    document.getElementById("note-form").hidden = state.mode === "replay" || !live;
    const lineage = document.getElementById("lineage");
    lineage.hidden = !state.lineage_text;
    lineage.textContent = state.lineage_text
      ? "T" + state.lineage_text.slice(1) + "." : "";
    render("notes", state.desk, () => state.desk.map((d) =>
      el("li", { class: "desk-" + d.kind, "data-kind": d.kind, "data-command": d.command || "" },
        el("span", { class: "muted" }, shortTime(d.time), " #", d.position, " "),
        d.kind === "note" ? el("span", { class: "tag" }, "note") : el("span", { class: "tag" },
          "action"), " ", d.text, d.case ? el("span", { class: "muted" }, " · ", d.case) : null)));

    render("timeline", state.timeline, () => state.timeline.map((e) =>
      el("tr", { class: e.rules.length ? "sev-error" : "" },
        el("td", {}, e.position), el("td", {}, shortTime(e.time)), el("td", {}, e.case || ""),
        el("td", {}, words(e.type)),
        el("td", {}, e.sender ? e.sender + " → " + (e.recipient || "") : ""),
        el("td", {}, e.gist, e.rules.length ? el("div", { class: "found" }, "⚠ " + e.rules.join(", ")) : null))));
  }

  connect("/control/stream", draw);
}

// -- a player's seat ----------------------------------------------------------------

function seatPage() {
  const forms = JSON.parse(document.getElementById("forms-data").textContent);
  const signatories = JSON.parse(document.getElementById("signatories-data").textContent);
  let state = null;
  let selected = null;
  let writing = null; // {kind, case, recipient, opening}
  const notices = [];

  function field(spec, prefill) {
    const name = spec.name;
    const initial = prefill && prefill[name] !== undefined ? prefill[name] : spec.default;
    let input;
    if (spec.kind === "select") {
      input = el("select", { name }, spec.choices.map((c) =>
        el("option", { value: c, selected: c === String(initial ?? "") }, words(c))));
    } else if (spec.kind === "multi") {
      return el("fieldset", { "data-name": name }, el("legend", {}, spec.label),
        spec.choices.map((c) => el("label", { class: "row" },
          el("input", { type: "checkbox", name, value: c }), words(c))));
    } else if (spec.kind === "checkbox") {
      return el("label", { class: "row" }, el("input", { type: "checkbox", name,
        checked: Boolean(initial) }), spec.label);
    } else if (spec.kind === "signatory") {
      input = el("select", { name },
        signatories.map((n, i) => el("option", { value: n }, n + (i === 0 ? " (head)" : " (deputy)"))),
        el("option", { value: "" }, "— not signed —"));
    } else if (spec.kind === "party") {
      input = el("select", { name }, state.parties.map((p) => el("option", { value: p }, p)));
    } else if (spec.kind === "datetime") {
      input = el("input", { type: "datetime-local", name });
    } else if (spec.kind === "lines") {
      input = el("textarea", { name, rows: 3, placeholder: spec.placeholder });
      if (Array.isArray(initial)) input.value = initial.join("\n");
    } else {
      input = el("textarea", { name, rows: 2, placeholder: spec.placeholder });
      if (typeof initial === "string") input.value = initial;
    }
    return el("label", {}, spec.label, input);
  }

  function openForm(kind, caseId, recipient, opening) {
    writing = { kind, case: caseId, recipient, opening };
    const spec = forms[kind];
    const current = state.cases.find((c) => c.id === caseId);
    const prefill = kind === "written_confirmation" && current && current.prefill
      ? Object.assign({}, current.prefill, { confirms: current.prefill.message_id }) : null;
    document.getElementById("form-title").textContent =
      words(kind) + " · " + caseId + " → " + (recipient || "?");
    document.getElementById("form-help").textContent = spec.help;
    document.getElementById("form-fields").replaceChildren(...spec.fields.map((f) => field(f, prefill)));
    document.getElementById("form-status").textContent = "";
    document.getElementById("form-area").hidden = false;
    const first = document.querySelector("#form-fields textarea, #form-fields select");
    if (first) first.focus();
  }

  function values() {
    const form = document.getElementById("message-form");
    const out = {};
    for (const spec of forms[writing.kind].fields) {
      const inputs = form.querySelectorAll(`[name="${spec.name}"]`);
      if (spec.kind === "multi") out[spec.name] = [...inputs].filter((i) => i.checked).map((i) => i.value);
      else if (spec.kind === "checkbox") out[spec.name] = inputs[0].checked ? "on" : "";
      else if (inputs.length) out[spec.name] = inputs[0].value;
    }
    return out;
  }

  document.getElementById("message-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const formStatus = document.getElementById("form-status");
    // One click, one message: a second click while the first is on its way would be
    // checked against the state before it (the server refuses it too).
    const sendButton = event.submitter || event.target.querySelector("button[type=submit]");
    if (sendButton) sendButton.disabled = true;
    formStatus.className = "status";
    formStatus.textContent = "sending…";
    try {
      const sent = await post(`/seat/${document.body.dataset.party}/send`,
        { kind: writing.kind, case: writing.case, recipient: writing.recipient, values: values() });
      notices.unshift(`${sent.message_id}: ${words(writing.kind)} sent in ${writing.case}`);
      formStatus.textContent = "sent as " + sent.message_id;
      document.getElementById("form-area").hidden = true;
      if (writing.opening) selected = writing.case;
      writing = null;
      draw(state);
    } catch (error) {
      formStatus.className = "status error";
      formStatus.textContent = error.message;
    } finally {
      if (sendButton) sendButton.disabled = false;
    }
  });
  document.getElementById("cancel").addEventListener("click", () => {
    document.getElementById("form-area").hidden = true;
    writing = null;
  });
  document.getElementById("open-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const caseId = document.getElementById("open-case").value.trim();
    if (!/^[a-z0-9_-]{1,64}$/.test(caseId)) {
      document.getElementById("open-case").focus();
      return;
    }
    openForm(document.getElementById("open-kind").value, caseId,
      document.getElementById("open-to").value, true);
  });

  function draw(next) {
    state = next;
    showClock(state);
    if (state.ended) {
      // Nothing can be sent any more: the forms go, the cases and their letters stay.
      document.getElementById("form-area").hidden = true;
      document.getElementById("open-form").hidden = true;
      writing = null;
    }
    if (!selected && state.cases.length) selected = state.cases[state.cases.length - 1].id;
    render("cases", [state.cases.map((c) => [c.id, c.state, c.counterpart]), selected], () =>
      state.cases.map((c) =>
      el("li", { class: c.id === selected ? "selected" : "", "data-case": c.id,
          onclick: () => { selected = c.id; draw(state); } },
        el("strong", {}, c.id), " ", el("span", { class: "badge" }, words(c.state)),
        el("div", { class: "muted" }, "you are the ", c.role, " party; with ", c.counterpart || "?"))));

    const current = state.cases.find((c) => c.id === selected);
    document.getElementById("case-title").textContent = current ? "Case " + current.id : "Choose a case";
    document.getElementById("case-state").textContent = current
      ? `${words(current.state)} · ${words(current.area)} · you are the ${current.role} party` : "";
    const party = document.body.dataset.party;
    const letter = (position, pdf) => el("a", { class: "letter", target: "_blank",
      rel: "noreferrer noopener", "data-format": pdf ? "pdf" : "html",
      href: withToken(`/seat/${party}/letter/${position}` + (pdf ? "?format=pdf" : "")) },
      pdf ? "PDF" : "letter");
    render("steps", current ? current.steps : [], () => (current ? current.steps : []).map((s) =>
      el("li", { "data-position": s.position },
        el("strong", {}, words(s.type)), " ", s.sender, " → ", s.recipient,
        el("span", { class: "muted" }, "  ", shortTime(s.time), " #", s.position),
        // The official letter this message stands for (every message that went in writing).
        s.letter ? el("span", { class: "letters" }, " ", letter(s.position, false), " · ",
          letter(s.position, true)) : null,
        el("div", {}, Object.entries(s.message)
          .filter(([k, v]) => !["type", "message_id", "case_id", "sender", "recipient", "language",
            "in_reply_to"].includes(k) && v !== "" && v !== null && !(Array.isArray(v) && !v.length))
          .map(([k, v]) => el("div", {}, el("span", { class: "muted" }, words(k), ": "),
            shown(v)))),
        s.violations.map((v) => el("div", { class: "found" },
          "⚠ Art. ", v.article, " ", v.rule_id, ": ", v.detail)))));

    const key = [current ? [current.id, current.allowed, current.recipients] : null,
      state.ended, state.training];
    render("actions", key, () => {
      if (!current || state.ended) {
        return state.ended ? el("p", { class: "muted" }, "The exercise has ended.") : [];
      }
      const allowed = current.allowed;
      const others = Object.keys(forms).filter((k) => !allowed.includes(k));
      return [
        allowed.length ? el("span", { class: "muted" }, "Allowed now: ")
          : el("span", { class: "muted" }, "Nothing for you to send in this case now."),
        ...allowed.map((kind) => el("button", { type: "button", class: "primary", "data-kind": kind,
          onclick: () => openForm(kind, current.id, current.recipients[kind], false) }, words(kind))),
        state.training ? el("label", { class: "row" }, "Training: send anyway ",
          el("select", { id: "offside", onchange: (event) => {
            if (event.target.value) {
              openForm(event.target.value, current.id,
                current.recipients[event.target.value] || current.counterpart, false);
            }
          } }, el("option", { value: "" }, "— not allowed now —"),
            others.map((k) => el("option", { value: k }, words(k))))) : null,
      ];
    });

    const lost = state.not_recorded || [];
    render("pending", [state.pending, lost], () => (state.pending.length || lost.length
      ? [...state.pending.map((p) => el("li", {}, p.message_id, ": ", words(p.type), " in ",
          p.case, " — waiting for the umpire")),
        ...lost.map((p) => el("li", { class: "found" }, p.message_id, ": ", words(p.type), " in ",
          p.case, " — not recorded: the exercise ended before it reached the umpire"))]
      : [el("li", { class: "muted" }, "Nothing waiting.")]));
    const rejections = state.other_events.filter((e) => e.type === "coop.rejection")
      .map((e) => "Rejected: " + (e.data.reason || ""));
    render("notices", [rejections, notices], () => [...rejections, ...notices].map((n) =>
      el("li", {}, n)));
  }

  connect(`/seat/${document.body.dataset.party}/stream`, draw);
}

if (document.body.dataset.page === "control") controlPage();
else if (document.body.dataset.page === "seat") seatPage();
