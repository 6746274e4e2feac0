// govhub webmail: progressive enhancement only. Every page works without
// this file; with it: keyboard shortcuts, list options applied on change,
// draft autosave, address autocomplete and an early attachment size check.
// Served from /static/ under a CSP that allows no inline script.
(function () {
  "use strict";

  function typing(el) {
    if (!el) return false;
    var t = el.tagName;
    return t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || el.isContentEditable;
  }

  function go(a) {
    if (a && a.href) window.location.assign(a.href);
  }

  // --- Keyboard navigation -------------------------------------------
  // j/k next/previous (list rows, or messages when reading), Enter opens
  // (the focused row's link), r reply, x select, u back to the list,
  // / search, c compose.
  var rows = [];
  var cur = -1;

  function setCurrent(i) {
    if (!rows.length) return;
    if (i < 0) i = 0;
    if (i >= rows.length) i = rows.length - 1;
    if (cur >= 0 && rows[cur]) rows[cur].classList.remove("current");
    cur = i;
    var r = rows[cur];
    r.classList.add("current");
    var a = r.querySelector("a.open");
    if (a) a.focus();
    r.scrollIntoView({ block: "nearest" });
  }

  function initList() {
    rows = Array.prototype.slice.call(document.querySelectorAll("table.messages tr.msg"));
    rows.forEach(function (r, i) {
      r.addEventListener("focusin", function () {
        if (cur !== i) {
          if (cur >= 0 && rows[cur]) rows[cur].classList.remove("current");
          cur = i;
          r.classList.add("current");
        }
      });
    });
    // Sort, threads and unread apply as soon as they change.
    var opts = document.querySelector("form.list-opts");
    if (opts) {
      opts.addEventListener("change", function () { opts.submit(); });
    }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    var page = document.body.getAttribute("data-page");
    switch (e.key) {
      case "/":
        var q = document.getElementById("q");
        if (q) { e.preventDefault(); q.focus(); q.select(); }
        return;
      case "c":
        go(document.querySelector("a.compose-btn"));
        return;
    }
    if (page === "list" || page === "search") {
      switch (e.key) {
        case "j": e.preventDefault(); setCurrent(cur + 1); return;
        case "k": e.preventDefault(); setCurrent(cur - 1); return;
        case "x":
          if (cur >= 0) {
            var cb = rows[cur].querySelector("input[type=checkbox]");
            if (cb) { e.preventDefault(); cb.checked = !cb.checked; }
          }
          return;
        case "r":
          if (cur >= 0) { var href = rows[cur].getAttribute("data-reply"); if (href) window.location.assign(href); }
          return;
        case "Enter":
          if (cur >= 0 && document.activeElement === document.body) {
            go(rows[cur].querySelector("a.open"));
          }
          return;
      }
    } else if (page === "view") {
      var ids = { j: "next-msg", k: "prev-msg", r: "reply", a: "reply-all", f: "forward", u: "back-to-list" };
      if (ids[e.key]) {
        var el = document.getElementById(ids[e.key]);
        if (el) { e.preventDefault(); go(el); }
      }
    }
  });

  // --- Compose: autosave, attachment size, autocomplete --------------
  function initCompose(form) {
    var csrf = form.querySelector("input[name=csrf_token]").value;
    var draftUID = document.getElementById("draft_uid");
    var status = document.getElementById("autosave-status");
    var dirty = false, saving = null, submitting = false;

    form.addEventListener("input", function (e) {
      if (e.target.type !== "file") dirty = true;
    });

    function formData() {
      var fd = new FormData(form);
      fd.delete("attachment");
      fd.delete("do");
      return fd;
    }

    function save(keepalive) {
      if (!dirty || submitting || saving) return saving;
      dirty = false;
      saving = fetch(form.getAttribute("data-autosave"), {
        method: "POST", body: formData(), credentials: "same-origin", keepalive: !!keepalive,
        headers: { "X-CSRF-Token": csrf }
      }).then(function (res) {
        return res.json().then(function (j) {
          if (!res.ok) throw new Error(j.error || res.status);
          if (j.draft_uid) draftUID.value = j.draft_uid;
          status.textContent = form.getAttribute("data-msg-saved").replace("%s", j.saved_at || "");
        });
      }).catch(function () {
        dirty = true;
        status.textContent = form.getAttribute("data-msg-save-failed");
      }).then(function () { saving = null; });
      return saving;
    }

    setInterval(function () { save(false); }, 20000);
    window.addEventListener("pagehide", function () { save(true); });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") save(true);
    });

    // A save still in flight when the form is sent would leave a stray
    // draft: wait for it so the draft id goes with the form.
    form.addEventListener("submit", function (e) {
      if (saving) {
        e.preventDefault();
        var btn = e.submitter;
        saving.then(function () { submitting = true; form.requestSubmit(btn); });
        return;
      }
      submitting = true;
    });

    var files = document.getElementById("attachment");
    var max = parseInt(form.getAttribute("data-max-upload"), 10) || 0;
    if (files && max) {
      files.addEventListener("change", function () {
        var total = 0;
        for (var i = 0; i < files.files.length; i++) total += files.files[i].size;
        var msg = total > max ? form.getAttribute("data-msg-too-large") : "";
        files.setCustomValidity(msg);
        status.textContent = msg;
        if (msg) files.reportValidity();
      });
    }

    Array.prototype.forEach.call(form.querySelectorAll("input.addr"), function (input) {
      autocomplete(input, form.getAttribute("data-suggest"));
    });
  }

  // Address autocomplete: an ARIA combobox over the last address being
  // typed; Mail.Suggest on the server matches names, pinyin (full or
  // initials), addresses and departments.
  var seq = 0;
  function autocomplete(input, url) {
    var list = document.createElement("ul");
    var id = input.id + "-suggest";
    list.id = id;
    list.className = "suggest";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.parentNode.appendChild(list);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", id);
    var items = [], active = -1, timer = null;

    function token() {
      var v = input.value;
      var m = v.match(/^(.*[,;，；、]\s*)?([^,;，；、]*)$/);
      return { head: (m && m[1]) || "", tail: (m && m[2]) || "" };
    }
    function close() {
      list.hidden = true; items = []; active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }
    function mark(i) {
      items.forEach(function (li, j) { li.setAttribute("aria-selected", j === i ? "true" : "false"); });
      active = i;
      if (i >= 0) { input.setAttribute("aria-activedescendant", items[i].id); items[i].scrollIntoView({ block: "nearest" }); }
    }
    function pick(i) {
      var c = items[i] && items[i]._contact;
      if (!c) return;
      var name = c.name || "";
      if (/[,;"<>@]/.test(name)) name = '"' + name.replace(/"/g, "") + '"';
      var addr = name ? name + " <" + c.address + ">" : c.address;
      input.value = token().head + addr + ", ";
      close();
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.focus();
    }
    function show(cs) {
      list.textContent = "";
      items = cs.map(function (c, i) {
        var li = document.createElement("li");
        li.id = id + "-" + i;
        li.setAttribute("role", "option");
        li.appendChild(document.createTextNode((c.name ? c.name + " " : "") + "<" + c.address + ">"));
        if (c.department) {
          var d = document.createElement("span");
          d.className = "dept";
          d.textContent = c.department;
          li.appendChild(d);
        }
        li._contact = c;
        li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(i); });
        list.appendChild(li);
        return li;
      });
      if (!items.length) { close(); return; }
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      mark(0);
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = token().tail.trim();
      if (!q) { close(); return; }
      timer = setTimeout(function () {
        var my = ++seq;
        fetch(url + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (cs) { if (my === seq && document.activeElement === input) show(cs || []); })
          .catch(close);
      }, 150);
    });
    input.addEventListener("keydown", function (e) {
      if (list.hidden) return;
      if (e.key === "ArrowDown") { e.preventDefault(); mark(Math.min(active + 1, items.length - 1)); }
      else if (e.key === "ArrowUp") { e.preventDefault(); mark(Math.max(active - 1, 0)); }
      else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) { e.preventDefault(); pick(active); }
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  function init() {
    initList();
    var form = document.getElementById("compose");
    if (form) initCompose(form);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
