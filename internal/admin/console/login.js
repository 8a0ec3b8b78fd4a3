// Sign-in: POST the token as JSON; the answer sets the session cookie.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const input = document.getElementById("token");
  const error = document.getElementById("login-error");
  const button = document.getElementById("sign-in");
  input.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      const res = await fetch("/api/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: input.value }),
      });
      if (res.ok) {
        location.assign("/");
        return;
      }
      let msg = "Sign-in failed (" + res.status + ").";
      try {
        const body = await res.json();
        if (body && body.error) msg = body.error;
      } catch (e) { /* not JSON */ }
      if (res.status === 429) {
        const wait = res.headers.get("Retry-After");
        if (wait) msg += " Try again in " + Math.ceil(Number(wait) / 60) + " minute(s).";
      }
      error.textContent = msg;
      input.select();
    } catch (e) {
      error.textContent = "The bridge did not answer. Is it running?";
    } finally {
      button.disabled = false;
    }
  });
});
