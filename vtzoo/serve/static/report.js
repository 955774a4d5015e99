// The HTML reports (vtzoo search --html, vtzoo eval --html): everything comes from the JSON inlined
// in the file, so they open offline; thumbnails are data: URIs, videos local files.
"use strict";

const data = JSON.parse(document.getElementById("vtzoo-data").textContent);
const content = document.getElementById("content");
const playerPanel = document.getElementById("player");
const play = makePlayer(playerPanel);

function section(title, ...children) {
  return el("section", {}, el("h2", {text: title}), ...children);
}

function hitsList(hits, emptyMessage) {
  const holder = el("div");
  renderHits(holder, hits, {play}, emptyMessage);
  return holder;
}

function searchReport() {
  const note = data.capped ? ` (capped at ${data.k})` : "";
  content.append(el("div", {class: "summary", text: `“${data.query}”: ${data.hits.length} results${note}`}),
                 hitsList(data.hits, "No video matches this query."));
}

function bars(metrics) {
  const grid = el("div", {class: "bars"});
  for (const [label, value] of metrics) {
    const bar = el("div", {class: "bar"}, el("span", {style: `width: ${Math.max(0, Math.min(100, value))}%`}));
    grid.append(el("div", {text: label}), bar, el("div", {class: "value", text: `${value.toFixed(1)}%`}));
  }
  return grid;
}

function rankTable(queries) {
  const table = el("table", {class: "ranks"});
  table.append(el("tr", {}, el("th", {text: "rank"}), el("th", {text: "query"}), el("th", {text: "its video"})));
  for (const q of queries)
    table.append(el("tr", {}, el("td", {class: "num", text: String(q.rank)}), el("td", {text: q.text}),
                             el("td", {text: baseName(q.video)})));
  return table;
}

function worstQuery(q) {
  const holder = hitsList(q.top);
  holder.querySelectorAll("li.hit").forEach((li, i) => { if (q.top[i].path === q.video) li.classList.add("correct"); });
  return el("div", {class: "worst"}, el("h3", {text: `rank ${q.rank}: “${q.text}” (its video: ${baseName(q.video)})`}),
            holder);
}

function evalReport() {
  const m = data.metrics;
  const ks = Object.keys(m.t2v).filter((key) => key.startsWith("R@"));
  content.append(
    el("div", {class: "summary", text: `${m.counts.captions} queries over ${m.counts.videos} videos` +
                                        (m.counts.failed_videos ? ` (${m.counts.failed_videos} could not be read)` : "") +
                                        ` · text→video MdR ${m.t2v.MdR}, MnR ${m.t2v.MnR.toFixed(2)}`}),
    section("Recall at K", bars([...ks.map((k) => [`text→video ${k}`, m.t2v[k]]),
                                 ...ks.map((k) => [`video→text ${k}`, m.v2t[k]])])),
    section(data.worst.length ? `The ${data.worst.length} worst queries and their top hits`
                              : "Every query ranked its own video first", ...data.worst.map(worstQuery)),
    section("Every query's rank (text→video, worst first)", rankTable(data.queries)));
}

(data.kind === "eval" ? evalReport : searchReport)();
