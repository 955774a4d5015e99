// Ranked hits as cards with a strip of thumbnails: shared by the search page and the HTML reports.
// Everything taken from data goes in through textContent or attributes, never as markup.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function formatTime(seconds) {
  const m = Math.floor(seconds / 60), s = seconds - 60 * m;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}

function baseName(path) {
  return path.split(/[\\/]/).pop();
}

function isWindow(hit) {
  return hit.start > 0.001 || (hit.duration && hit.end < hit.duration - 0.05);
}

// actions: {play(hit), similar(hit)}; each optional. Returns the <li>.
function hitCard(hit, rank, actions) {
  const window = isWindow(hit) ? el("span", {class: "window", text: `${formatTime(hit.start)} – ${formatTime(hit.end)}`}) : null;
  const title = el("div", {class: "title"},
    el("span", {class: "rank", text: `${rank}.`}),
    el("span", {class: "name", text: baseName(hit.path), title: hit.path}),
    window,
    el("span", {class: "score", text: hit.score.toFixed(4), title: "score"}));
  const card = el("li", {class: "hit" + (hit.missing ? " missing" : ""), "data-id": hit.id || ""}, title,
    el("div", {class: "path", text: hit.path}));
  const strip = el("div", {class: "strip"});
  (hit.thumbnails || []).forEach((src, i) => {
    const img = el("img", {src, alt: `frame ${i + 1} of ${baseName(hit.path)}`, class: "thumb"});
    if (!src.startsWith("data:")) img.loading = "lazy";  // a report's frames are in the file already
    img.addEventListener("error", () => img.classList.add("broken"));
    if (actions && actions.play && !hit.missing) img.addEventListener("click", () => actions.play(hit));
    strip.append(img);
  });
  if (strip.children.length) card.append(strip);
  if (hit.missing) card.append(el("div", {class: "missing-note", text: `Missing: ${hit.missing}`}));
  const buttons = el("div", {class: "actions"});
  if (actions && actions.play && hit.video && !hit.missing)
    buttons.append(el("button", {class: "play", type: "button", text: `▶ Play from ${formatTime(hit.start)}`,
                                 onclick: () => actions.play(hit)}));
  if (actions && actions.similar && hit.id)
    buttons.append(el("button", {class: "secondary similar", type: "button", text: "More like this",
                                 onclick: () => actions.similar(hit)}));
  if (buttons.children.length) card.append(buttons);
  return card;
}

function renderHits(container, hits, actions, emptyMessage) {
  container.replaceChildren();
  if (!hits.length) {
    container.append(el("div", {class: "empty", text: emptyMessage || "No video matches this query."}));
    return;
  }
  const list = el("ol", {class: "hits"});
  hits.forEach((hit, i) => list.append(hitCard(hit, i + 1, actions)));
  container.append(list);
}

// A <video> panel that plays a hit from its start time.
function makePlayer(panel) {
  const video = panel.querySelector("video");
  const caption = panel.querySelector(".caption span");
  panel.querySelector(".caption button").addEventListener("click", () => { video.pause(); panel.classList.remove("open"); });
  return function play(hit) {
    panel.classList.add("open");
    caption.textContent = `${baseName(hit.path)} from ${formatTime(hit.start)}`;
    const start = () => { video.currentTime = hit.start; video.play().catch(() => {}); };
    if (video.dataset.src === hit.video && video.readyState >= 1) { start(); return; }
    video.dataset.src = hit.video;
    video.addEventListener("loadedmetadata", start, {once: true});
    video.src = hit.video;
    video.load();
    panel.scrollIntoView({block: "nearest"});
  };
}
