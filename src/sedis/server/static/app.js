// sedis web UI: sign-in, actions with confirmation, and live updates from the ledger.
"use strict";

(function () {
  const CSRF_COOKIE = "sedis_csrf";

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  function problem(body, status) {
    if (body && Array.isArray(body.errors) && body.errors.length) {
      return body.errors.map((e) => e.message).join("; ");
    }
    return "the server answered " + status;
  }

  // Sends a request to the API; answers its JSON, or throws an Error with its message.
  async function api(method, url, body, headers) {
    const sent = { "Accept": "application/json", "X-CSRF-Token": cookie(CSRF_COOKIE) };
    if (body !== undefined) sent["Content-Type"] = "application/json";
    Object.assign(sent, headers || {});
    const response = await fetch(url, {
      method: method,
      headers: sent,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!response.ok) {
      const error = new Error(problem(data, response.status));
      error.status = response.status;
      throw error;
    }
    return data;
  }
  window.sedisApi = api;

  function say(element, text, isError) {
    if (!element) return;
    element.textContent = text;
    element.classList.toggle("error", Boolean(isError));
  }

  function utf8Hex(text) {
    const bytes = new TextEncoder().encode(text);
    return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function safeNext(next) {
    // One slash, then neither slash nor backslash: browsers read "/\\x" as "//x".
    return next && /^\/(?![\/\\])[^\\\s]*$/.test(next) ? next : "/images";
  }

  // -- sign-in --------------------------------------------------------------------------

  function setUpSignIn() {
    const root = document.getElementById("signin");
    if (!root) return;
    const message = document.getElementById("signin-message");
    const next = safeNext(root.dataset.next);
    const wallet = document.getElementById("wallet-signin");
    wallet.addEventListener("click", async () => {
      if (!window.ethereum || typeof window.ethereum.request !== "function") {
        say(message, "No browser wallet was found: install one, or sign in with a token.", true);
        return;
      }
      wallet.disabled = true;
      say(message, "Waiting for your wallet…");
      try {
        const accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
        if (!accounts || !accounts.length) throw new Error("the wallet gave no account");
        const address = accounts[0];
        const nonce = await api("GET", "/api/v1/auth/nonce?address=" + encodeURIComponent(address));
        const signature = await window.ethereum.request({
          method: "personal_sign",
          params: [utf8Hex(nonce.message), address],
        });
        await api("POST", "/api/v1/auth/signin", {
          message: nonce.message, signature: signature, mode: "cookie",
        });
        say(message, "Signed in.");
        window.location.assign(next);
      } catch (error) {
        say(message, "Not signed in: " + (error.message || error), true);
      } finally {
        wallet.disabled = false;
      }
    });
    document.getElementById("token-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const field = document.getElementById("token");
      const token = field.value.trim();
      try {
        await api("POST", "/api/v1/auth/session", undefined, { "Authorization": "Bearer " + token });
        field.value = "";
        say(message, "Signed in.");
        window.location.assign(next);
      } catch (error) {
        say(message, "Not signed in: " + error.message, true);
        field.focus();
      }
    });
  }

  function setUpSignOut() {
    const button = document.getElementById("signout");
    if (!button) return;
    button.addEventListener("click", async () => {
      try { await api("POST", "/api/v1/auth/signout"); } catch (_) { /* gone already */ }
      window.location.assign("/signin");
    });
  }

  // -- actions --------------------------------------------------------------------------

  let opener = null;

  function openDialog(button) {
    const dialog = document.getElementById(button.dataset.open);
    if (!dialog) return;
    opener = button;
    const form = dialog.querySelector("form");
    if (button.dataset.to) {
      form.elements.to.value = button.dataset.to;
      for (const slot of dialog.querySelectorAll("[data-fill=to]")) slot.textContent = button.dataset.to;
    }
    dialog.showModal();
  }

  function request(action, form, image) {
    const base = "/api/v1/images/" + image.dataset.apiRef;
    const query = image.dataset.apiQuery || "";
    const value = (name) => form.elements[name].value.trim();
    if (action === "status") {
      return ["POST", base + "/status" + query, { status: value("status"), reason: value("reason") }];
    }
    if (action === "share") {
      return ["POST", base + "/grants" + query, { to: value("to"), expires: value("expires") || null }];
    }
    if (action === "unshare") {
      const rotate = form.elements.rotate.checked ? "true" : "false";
      const joiner = query ? query + "&" : "?";
      return ["DELETE", base + "/grants/" + encodeURIComponent(value("to")) + joiner + "rotate=" + rotate, undefined];
    }
    return ["POST", base + "/attestations" + query, { kind: value("kind"), payload: value("payload") || null }];
  }

  function setUpActions() {
    const image = document.getElementById("image");
    if (!image) return;
    const result = document.getElementById("action-result");
    image.addEventListener("click", (event) => {
      const button = event.target.closest("[data-open]");
      if (button) openDialog(button);
      const closer = event.target.closest("[data-close]");
      if (closer) closer.closest("dialog").close();
    });
    for (const dialog of image.querySelectorAll("dialog")) {
      dialog.addEventListener("close", () => {
        if (opener && document.contains(opener)) opener.focus();
        if (pending) refresh();
      });
      const form = dialog.querySelector("form");
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const [method, url, body] = request(form.dataset.action, form, image);
        const confirm = form.querySelector("button[type=submit]");
        confirm.disabled = true;
        say(result, "Sending…");
        try {
          const answer = await api(method, url, body);
          dialog.close();
          form.reset();
          const made = answer.transactions || [];
          const transaction = answer.transaction || made[made.length - 1] || "(none needed)";
          say(result, "Done: transaction " + transaction + " in block " + answer.block + ".");
          refresh();
        } catch (error) {
          dialog.close();
          say(result, "Refused: " + error.message, true);
        } finally {
          confirm.disabled = false;
        }
      });
    }
  }

  // -- live updates ---------------------------------------------------------------------

  let pending = false;
  let inFlight = false;
  let timer = null;

  function anyDialogOpen() {
    return Boolean(document.querySelector("dialog[open]"));
  }

  async function refresh() {
    const live = document.getElementById("live");
    if (!live) return;
    if (anyDialogOpen() || inFlight) { pending = true; return; }
    pending = false;
    inFlight = true;
    try {
      const response = await fetch(window.location.href, {
        headers: { "X-Partial": "1" }, credentials: "same-origin", cache: "no-store",
      });
      if (response.redirected) { window.location.reload(); return; }
      if (!response.ok && response.status !== 400) return;
      const html = await response.text();
      if (anyDialogOpen()) { pending = true; return; }
      const active = document.activeElement;
      const focusId = active && live.contains(active) ? active.id : "";
      const hadFocus = active && live.contains(active);
      live.innerHTML = html;
      if (focusId && document.getElementById(focusId)) {
        document.getElementById(focusId).focus();
      } else if (hadFocus) {
        document.getElementById("main").focus();
      }
      const block = response.headers.get("X-Sedis-Block");
      if (block) {
        const shown = document.getElementById("block-number");
        if (shown) shown.textContent = block;
        document.body.dataset.block = block;
        say(document.getElementById("announce"), "Updated to ledger block " + block + ".");
      }
    } catch (_) {
      pending = true;
    } finally {
      inFlight = false;
      if (pending && !anyDialogOpen()) schedule();
    }
  }

  function schedule() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { timer = null; refresh(); }, 150);
  }

  function setUpLive() {
    const url = document.body.dataset.events;
    if (!url || !document.getElementById("live") || !window.EventSource) return;
    if (document.getElementById("signin")) return;
    const state = document.getElementById("live-state");
    const source = new EventSource(url);
    source.addEventListener("open", () => say(state, "live updates on"));
    source.addEventListener("error", () => say(state, "live updates reconnecting"));
    source.addEventListener("ledger", schedule);
    source.addEventListener("resync", schedule);
    window.addEventListener("pagehide", () => source.close());
  }

  function start() {
    setUpSignIn();
    setUpSignOut();
    setUpActions();
    setUpLive();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
