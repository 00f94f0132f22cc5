// "Your passkeys": add a passkey to your own account. With passkeys already registered, a
// fresh assertion with one of them comes first (the step-up form); the page then offers
// the registration of the new one. Renaming and removing are plain forms.
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

  function poster(form) {
    const csrf = form.querySelector("input[name=_csrf]").value;
    const env = form.querySelector("input[name=_target_env]").value;
    return async function post(url, body) {
      const resp = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "X-Console-Env": env },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      const data = await resp.json().catch(() => ({ message: "The server answered " + resp.status }));
      if (!resp.ok) throw new Error(data.message || data.error || "Request failed");
      return data;
    };
  }

  async function stepUp(post) {
    const start = await post("/api/v1/passkeys/step-up/start", {});
    const pk = start.challenge.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => (c.id = b64.decode(c.id)));
    const cred = await navigator.credentials.get({ publicKey: pk });
    await post("/api/v1/passkeys/step-up/finish", {
      ceremony: start.ceremony,
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
  }

  async function add(form) {
    const post = poster(form);
    const name = form.querySelector("input[name=name]").value;
    const start = await post("/api/v1/passkeys/register/start", { name });
    const pk = start.challenge.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    pk.user.id = b64.decode(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => (c.id = b64.decode(c.id)));
    const cred = await navigator.credentials.create({ publicKey: pk });
    const done = await post("/api/v1/passkeys/register/finish", {
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
    window.location.assign(done.redirect || "/passkeys");
  }

  document.querySelectorAll("form[data-passkey-add], form[data-passkey-stepup]").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = form.querySelector(".form-error");
      const button = form.querySelector("button[type=submit]");
      err.hidden = true;
      button.disabled = true;
      try {
        if (form.hasAttribute("data-passkey-stepup")) {
          await stepUp(poster(form));
          window.location.assign("/passkeys");
        } else {
          await add(form);
        }
      } catch (e) {
        err.textContent = e && e.message ? e.message : String(e);
        err.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  });
})();
