// Passkey ceremonies for the sign-in, bootstrap and invite forms. The only script the
// console serves: everything else works without JavaScript.
(function () {
  "use strict";
  const b64 = {
    decode(s) {
      s = s.replace(/-/g, "+").replace(/_/g, "/");
      while (s.length % 4) s += "=";
      return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      let s = "";
      new Uint8Array(buf).forEach((b) => (s += String.fromCharCode(b)));
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  async function post(url, body) {
    const resp = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({ message: "The server answered " + resp.status }));
    if (!resp.ok) throw new Error(data.message || data.error || "Request failed");
    return data;
  }

  async function register(form) {
    const fields = Object.fromEntries(new FormData(form).entries());
    const start = await post("/auth/register/start", fields);
    const pk = start.challenge.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    pk.user.id = b64.decode(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => (c.id = b64.decode(c.id)));
    const cred = await navigator.credentials.create({ publicKey: pk });
    const done = await post("/auth/register/finish", {
      ceremony: start.ceremony,
      credential: {
        id: cred.id,
        rawId: b64.encode(cred.rawId),
        type: cred.type,
        extensions: cred.getClientExtensionResults(),
        response: {
          attestationObject: b64.encode(cred.response.attestationObject),
          clientDataJSON: b64.encode(cred.response.clientDataJSON),
        },
      },
    });
    window.location.assign(done.redirect || "/");
  }

  async function login(form) {
    const fields = Object.fromEntries(new FormData(form).entries());
    const start = await post("/auth/login/start", fields);
    const pk = start.challenge.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => (c.id = b64.decode(c.id)));
    const cred = await navigator.credentials.get({ publicKey: pk });
    const done = await post("/auth/login/finish", {
      ceremony: start.ceremony,
      // The deep link this sign-in started from; the server re-checks it is same-origin.
      next: form.dataset.next || null,
      credential: {
        id: cred.id,
        rawId: b64.encode(cred.rawId),
        type: cred.type,
        extensions: cred.getClientExtensionResults(),
        response: {
          authenticatorData: b64.encode(cred.response.authenticatorData),
          clientDataJSON: b64.encode(cred.response.clientDataJSON),
          signature: b64.encode(cred.response.signature),
          userHandle: cred.response.userHandle ? b64.encode(cred.response.userHandle) : null,
        },
      },
    });
    window.location.assign(done.redirect || "/");
  }

  document.querySelectorAll("form[data-passkey]").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = form.querySelector(".form-error");
      const button = form.querySelector("button[type=submit]");
      err.hidden = true;
      button.disabled = true;
      try {
        if (form.dataset.passkey === "register") await register(form);
        else await login(form);
      } catch (e) {
        err.textContent = e && e.message ? e.message : String(e);
        err.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  });
})();
