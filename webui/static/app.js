// Inbox operator pages: keyboard shortcuts, actions through the REST API, live updates.
//
// Rules this file keeps: no build step, no inline script (the page's CSP forbids it; settings
// come from data- attributes), and data from the server only ever reaches the DOM as
// textContent or attribute values, never as markup (no innerHTML anywhere).
(function () {
  "use strict";

  const body = document.body;
  const pageName = body.dataset.page || "";
  const strings = (document.getElementById("ui-strings") || { dataset: {} }).dataset;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.content : "";
  const operatorId = body.dataset.operatorId || "";
  const locale = body.dataset.locale || "en";
  const timeZone = body.dataset.timeZone || "UTC";
  const BROWSER_ZONE_COOKIE = "inbox_browser_tz";

  function t(key, fallback) {
    return strings[key] || fallback || key;
  }

  // ---- formatting -------------------------------------------------------------------------

  function formatter(options) {
    try {
      return new Intl.DateTimeFormat(locale, Object.assign({ timeZone: timeZone }, options));
    } catch (error) {
      return new Intl.DateTimeFormat(locale, options);
    }
  }
  const fullFormat = formatter({ dateStyle: "medium", timeStyle: "medium" });
  const timeFormat = formatter({ timeStyle: "short" });
  const dayFormat = formatter({ day: "numeric", month: "short" });
  const dateKey = formatter({ year: "numeric", month: "2-digit", day: "2-digit" });

  function shortTime(date) {
    return dateKey.format(date) === dateKey.format(new Date()) ? timeFormat.format(date) : dayFormat.format(date);
  }

  function duration(milliseconds) {
    const minutes = Math.max(0, Math.round(milliseconds / 60000));
    const [value, unit] =
      minutes < 1 ? [Math.max(0, Math.round(milliseconds / 1000)), "second"]
        : minutes < 60 ? [minutes, "minute"]
          : minutes < 60 * 24 ? [Math.round(minutes / 60), "hour"]
            : [Math.round(minutes / (60 * 24)), "day"];
    return new Intl.NumberFormat(locale, { style: "unit", unit: unit, unitDisplay: "long" }).format(value);
  }

  function waitingText(since) {
    return t("waiting", "waiting {duration}").replace("{duration}", duration(Date.now() - since.getTime()));
  }

  function operatorName(id) {
    if (!id) return "";
    const item = document.querySelector('#operator-names [data-operator-id="' + CSS.escape(id) + '"]');
    return item ? item.textContent : "";
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // ---- REST API ---------------------------------------------------------------------------

  async function api(method, path, payload, headers) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: Object.assign({ Accept: "application/json", "X-CSRF-Token": csrfToken }, headers || {}),
    };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const response = await fetch(path, init);
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const failure = new Error((data && data.error && data.error.message) || response.statusText);
      failure.status = response.status;
      throw failure;
    }
    return data;
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function showStatus(node, text, failed) {
    if (!node) return;
    node.textContent = text;
    node.classList.toggle("is-error", Boolean(failed));
  }

  // ---- keyboard shortcuts -----------------------------------------------------------------

  const shortcuts = {};
  const help = document.getElementById("shortcuts-help");

  function toggleHelp() {
    if (!help) return;
    if (help.open) help.close();
    else help.showModal();
  }

  const helpButton = document.getElementById("shortcuts-button");
  if (helpButton) helpButton.addEventListener("click", toggleHelp);

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    const action = shortcuts[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  // ---- the inbox list ---------------------------------------------------------------------

  const LIST_KEY = "inbox.list";

  function setupInbox() {
    const list = document.getElementById("conversation-list");
    const banner = document.getElementById("live-banner");
    const views = document.getElementById("views");
    if (views && window.matchMedia("(max-width: 720px)").matches) views.open = false;
    let selected = -1;

    function rows() {
      return Array.from(list.querySelectorAll('[data-testid="conversation-row"]'));
    }

    function remember() {
      const ids = rows().map((row) => row.dataset.conversationId);
      sessionStorage.setItem(LIST_KEY, JSON.stringify({ ids: ids, url: location.pathname + location.search }));
    }

    function select(index) {
      const all = rows();
      if (!all.length) return;
      selected = Math.max(0, Math.min(all.length - 1, index));
      all.forEach((row, i) => row.classList.toggle("is-selected", i === selected));
      const link = all[selected].querySelector("a.conv-link");
      if (link) link.focus();
    }

    shortcuts.j = () => select(selected + 1);
    shortcuts.k = () => select(selected - 1);
    remember();

    function matches(conversation) {
      const data = body.dataset;
      if (data.filterQ) return null; // a text search cannot be judged here
      if (data.focused === "true") {
        return conversation.assignee_id === operatorId && conversation.status === "open";
      }
      if (data.status !== "any" && conversation.status !== data.status) return false;
      if (data.view === "mine" && conversation.assignee_id !== operatorId) return false;
      if (data.view === "unassigned" && conversation.assignee_id) return false;
      if (data.filterChannel && conversation.channel_id !== data.filterChannel) return false;
      if (data.filterTeam && conversation.team_id !== data.filterTeam) return false;
      if (data.filterTag && !(conversation.tags || []).includes(data.filterTag)) return false;
      return true;
    }

    function badgeFor(channelId) {
      const known = document.querySelector('[data-testid="channel-' + CSS.escape(channelId) + '"] .channel-badge');
      if (known) return known.cloneNode(true);
      return el("span", "channel-badge", "?");
    }

    function fillRow(row, conversation) {
      const set = (testid, text) => {
        const node = row.querySelector('[data-testid="' + testid + '"]');
        if (node) node.textContent = text;
        return node;
      };
      const last = new Date(conversation.last_message_at);
      row.dataset.lastMessageAt = conversation.last_message_at;
      const time = set("conversation-time", shortTime(last));
      if (time) {
        time.setAttribute("datetime", conversation.last_message_at);
        time.title = fullFormat.format(last);
      }
      const status = set("conversation-status", t("status" + conversation.status[0].toUpperCase() + conversation.status.slice(1), conversation.status));
      if (status) status.className = "conv-status status--" + conversation.status;
      set("conversation-assignee", operatorName(conversation.assignee_id) || t("unassigned", "Unassigned"));
      const waiting = Boolean(conversation.waiting_since);
      row.classList.toggle("conv-row--waiting", waiting);
      const marker = row.querySelector('[data-testid="needs-answer"]');
      if (marker) marker.hidden = !waiting;
      const waited = row.querySelector('[data-testid="conversation-waiting"]');
      if (waited) {
        waited.dataset.waitingSince = conversation.waiting_since || "";
        waited.textContent = waiting ? waitingText(new Date(conversation.waiting_since)) : "";
      }
      if (conversation.contact && conversation.contact.name) set("conversation-contact", conversation.contact.name);
    }

    function newRow(conversation) {
      const row = el("li", "conv-row");
      row.setAttribute("data-testid", "conversation-row");
      row.dataset.conversationId = conversation.id;
      const link = el("a", "conv-link");
      link.href = "/conversations/" + encodeURIComponent(conversation.id);
      link.setAttribute("data-testid", "conversation-link");
      link.append(badgeFor(conversation.channel_id));
      const main = el("span", "conv-main");
      const top = el("span", "conv-top");
      const contact = el("span", "conv-contact", (conversation.contact && conversation.contact.name) || t("unknownContact"));
      contact.setAttribute("data-testid", "conversation-contact");
      const time = el("time", "conv-time");
      time.setAttribute("data-testid", "conversation-time");
      top.append(contact, time);
      const subject = el("span", "conv-subject", conversation.subject || "#" + conversation.number);
      subject.setAttribute("data-testid", "conversation-subject");
      const meta = el("span", "conv-meta");
      const marker = el("span", "needs-answer", t("needsAnswer"));
      marker.setAttribute("data-testid", "needs-answer");
      const waited = el("span", "conv-waiting");
      waited.setAttribute("data-testid", "conversation-waiting");
      const status = el("span", "conv-status");
      status.setAttribute("data-testid", "conversation-status");
      const assignee = el("span", "conv-assignee");
      assignee.setAttribute("data-testid", "conversation-assignee");
      meta.append(marker, " ", waited, " ", status, " ", assignee);
      main.append(top, subject, meta);
      link.append(main);
      row.append(link);
      fillRow(row, conversation);
      return row;
    }

    function onConversation(conversation, moved) {
      if (!conversation || !conversation.id) return;
      const row = list.querySelector('[data-conversation-id="' + CSS.escape(conversation.id) + '"]');
      const fits = matches(conversation);
      if (fits === null) {
        if (banner) banner.hidden = false;
        return;
      }
      if (row && !fits) {
        row.remove();
      } else if (row) {
        fillRow(row, conversation);
        if (moved && body.dataset.firstPage === "true") list.prepend(row);
      } else if (fits) {
        if (body.dataset.firstPage === "true") {
          list.prepend(newRow(conversation));
          const empty = document.querySelector('[data-testid="empty-list"]');
          if (empty) empty.hidden = true;
        } else if (banner) {
          banner.hidden = false;
        }
      }
      remember();
    }

    setInterval(function () {
      list.querySelectorAll('[data-testid="conversation-waiting"]').forEach(function (node) {
        if (node.dataset.waitingSince) node.textContent = waitingText(new Date(node.dataset.waitingSince));
      });
    }, 60000);

    return function (frame) {
      if (frame.type === "conversation.created" || frame.type === "conversation.updated") {
        onConversation(frame.conversation, false);
      } else if (frame.type === "message.created") {
        onConversation(frame.conversation, true);
      }
    };
  }

  // ---- one conversation -------------------------------------------------------------------

  function setupConversation() {
    const conversationId = body.dataset.conversationId;
    const messages = document.getElementById("messages");
    const form = document.getElementById("reply-form");
    const text = document.getElementById("reply-text");
    const replyStatus = document.getElementById("reply-status");
    const actionStatus = document.getElementById("action-status");
    const keyName = "reply-key:" + conversationId;
    let sending = false;

    // j/k walk the list the operator came from
    function step(offset) {
      let remembered = null;
      try {
        remembered = JSON.parse(sessionStorage.getItem(LIST_KEY) || "null");
      } catch (error) {
        remembered = null;
      }
      if (!remembered || !Array.isArray(remembered.ids)) return;
      const index = remembered.ids.indexOf(conversationId);
      const next = remembered.ids[index + offset];
      if (index >= 0 && next) location.assign("/conversations/" + encodeURIComponent(next));
    }
    shortcuts.j = () => step(1);
    shortcuts.k = () => step(-1);
    shortcuts.r = () => text && text.focus();
    shortcuts.e = () => patch({ status: "resolved" });
    shortcuts.a = () => patch({ assignee_id: operatorId });

    async function send() {
      if (sending || !text.value.trim()) return;
      sending = true;
      const key = sessionStorage.getItem(keyName) || newKey();
      sessionStorage.setItem(keyName, key); // the same key until the server has the message
      const kind = (form.querySelector('input[name="kind"]:checked') || { value: "reply" }).value;
      showStatus(replyStatus, t("sending", "Sending…"), false);
      try {
        const message = await api(
          "POST",
          "/api/v1/conversations/" + encodeURIComponent(conversationId) + "/messages",
          { text: text.value, kind: kind },
          { "Idempotency-Key": key },
        );
        sessionStorage.removeItem(keyName);
        text.value = "";
        showStatus(replyStatus, t("sent", "Sent"), false);
        appendMessage(message);
      } catch (error) {
        // 409: the key went with another text (the first try was stored, then the text changed):
        // the next send is a new message with a new key, not the same one refused forever
        if (error.status === 409) sessionStorage.removeItem(keyName);
        showStatus(replyStatus, t("sendFailed") + " " + (error.message || ""), true);
      } finally {
        sending = false;
      }
    }

    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        send();
      });
      text.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          send();
        }
      });
    }

    async function patch(changes) {
      showStatus(actionStatus, "…", false);
      try {
        const conversation = await api("PATCH", "/api/v1/conversations/" + encodeURIComponent(conversationId), changes);
        applyConversation(conversation);
        showStatus(actionStatus, t("saved", "Saved"), false);
      } catch (error) {
        showStatus(actionStatus, t("saveFailed") + ": " + (error.message || ""), true);
      }
    }

    const toolbar = document.querySelector('[data-testid="conversation-actions"]');
    if (toolbar) {
      toolbar.addEventListener("click", function (event) {
        const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
        if (!button) return;
        const action = button.dataset.action;
        if (action === "assign-me") patch({ assignee_id: operatorId });
        else if (action === "unassign") patch({ assignee_id: null });
        else if (action === "resolve") patch({ status: "resolved" });
        else if (action === "reopen") patch({ status: "open" });
        else if (action === "snooze") {
          const until = document.getElementById("snooze-until").value;
          if (until) patch({ status: "snoozed", snoozed_until: new Date(until).toISOString() });
        } else if (action === "tags") {
          const tags = document.getElementById("tags-input").value.split(",").map((s) => s.trim()).filter(Boolean);
          patch({ tags: tags });
        }
      });
      toolbar.addEventListener("change", function (event) {
        const field = event.target;
        if (!(field instanceof HTMLSelectElement)) return;
        if (field.dataset.action === "priority") patch({ priority: field.value });
        else if (field.dataset.action === "assign-to") patch({ assignee_id: field.value || null });
      });
    }

    function applyConversation(conversation) {
      if (!conversation || conversation.id !== conversationId) return;
      body.dataset.conversationStatus = conversation.status;
      body.dataset.assigneeId = conversation.assignee_id || "";
      const status = document.getElementById("conversation-status");
      if (status) {
        status.textContent = t("status" + conversation.status[0].toUpperCase() + conversation.status.slice(1), conversation.status);
        status.dataset.status = conversation.status;
        status.className = "conv-status status--" + conversation.status;
      }
      const assignee = document.getElementById("conversation-assignee");
      if (assignee) assignee.textContent = operatorName(conversation.assignee_id) || t("unassigned", "Unassigned");
      const priority = document.querySelector('[data-action="priority"]');
      if (priority) priority.value = conversation.priority;
      const priorityText = document.getElementById("conversation-priority");
      if (priorityText && priority) priorityText.textContent = priority.selectedOptions[0].textContent;
      const assignTo = document.querySelector('[data-action="assign-to"]');
      if (assignTo) assignTo.value = conversation.assignee_id || "";
      const hide = (name, hidden) => {
        const button = document.querySelector('[data-action="' + name + '"]');
        if (button) button.hidden = hidden;
      };
      const needsAnswer = document.querySelector('.conv-meta [data-testid="needs-answer"], #conversation-needs-answer');
      if (needsAnswer) needsAnswer.hidden = !conversation.waiting_since; // answered: the marker goes
      hide("assign-me", conversation.assignee_id === operatorId);
      hide("unassign", !conversation.assignee_id);
      hide("resolve", conversation.status === "resolved");
      hide("reopen", conversation.status === "open");
      const tagsInput = document.getElementById("tags-input");
      if (tagsInput && document.activeElement !== tagsInput) tagsInput.value = (conversation.tags || []).join(", ");
      const tagsBlock = document.getElementById("conversation-tags-block");
      const tagsList = document.getElementById("conversation-tags");
      if (tagsBlock && tagsList) {
        tagsList.replaceChildren();
        (conversation.tags || []).forEach(function (tag) {
          const link = el("a", "tag", tag);
          link.href = "/?status=any&tag=" + encodeURIComponent(tag);
          tagsList.append(link, " ");
        });
        tagsBlock.hidden = !(conversation.tags || []).length;
      }
    }

    function styleOf(message) {
      if (message.kind === "message") return message.direction === "in" ? "inbound" : "outbound";
      return message.kind;
    }

    function authorOf(message, style) {
      if (style === "inbound") {
        const contact = document.querySelector('[data-testid="contact-name"]');
        return contact ? contact.textContent : t("unknownContact");
      }
      if (style === "outbound") return operatorName(message.author_id) || t("operator", "Operator");
      if (style === "note") {
        const name = operatorName(message.author_id);
        return t("note", "Private note") + (name ? " · " + name : "");
      }
      if (style === "auto_reply") return t("automaticReply");
      return t("system");
    }

    function deliveryNode(message) {
      const node = el("p", "delivery delivery--" + message.delivery.status);
      node.setAttribute("data-testid", "delivery");
      node.dataset.deliveryStatus = message.delivery.status;
      const label = el("span", "delivery-label");
      label.setAttribute("data-testid", "delivery-status");
      const failure = el("span", "delivery-error");
      failure.setAttribute("data-testid", "delivery-error");
      const resend = el("button", "resend", t("resend", "Resend"));
      resend.type = "button";
      resend.dataset.action = "resend";
      resend.dataset.messageId = message.id;
      resend.setAttribute("data-testid", "resend");
      node.append(label, " ", failure, " ", resend);
      fillDelivery(node, message.delivery);
      return node;
    }

    function fillDelivery(node, delivery) {
      node.className = "delivery delivery--" + delivery.status;
      node.dataset.deliveryStatus = delivery.status;
      const key = "delivery" + delivery.status[0].toUpperCase() + delivery.status.slice(1);
      node.querySelector('[data-testid="delivery-status"]').textContent = t(key, delivery.status);
      const failure = node.querySelector('[data-testid="delivery-error"]');
      failure.textContent = delivery.error || "";
      failure.hidden = !delivery.error;
      const resend = node.querySelector('[data-action="resend"]');
      if (resend) {
        resend.hidden = delivery.status !== "failed";
        resend.disabled = false;
      }
    }

    // one click queues a failed reply again; the delivery.updated frame then shows its progress
    const messageList = document.querySelector('[data-testid="message-list"]');
    if (messageList) {
      messageList.addEventListener("click", async function (event) {
        const button = event.target instanceof Element ? event.target.closest('button[data-action="resend"]') : null;
        if (!button) return;
        button.disabled = true;
        try {
          const message = await api("POST", "/api/v1/messages/" + encodeURIComponent(button.dataset.messageId) + "/resend");
          // a delivery.updated frame may have brought a newer state already: the answer only fills a gap
          const node = button.closest('[data-testid="delivery"]');
          if (node && node.dataset.deliveryStatus === "failed") onDelivery(message);
        } catch (error) {
          button.disabled = false;
          showStatus(actionStatus, t("sendFailed") + " " + (error.message || ""), true);
        }
      });
    }

    function appendMessage(message) {
      if (!message || message.conversation_id !== conversationId) return;
      if (document.getElementById("message-" + message.id)) return;
      const style = styleOf(message);
      const item = el("li", "msg msg--" + style);
      item.id = "message-" + message.id;
      item.setAttribute("data-testid", "message");
      item.dataset.messageId = message.id;
      item.dataset.messageStyle = style;
      const head = el("div", "msg-head");
      const author = el("span", "msg-author", authorOf(message, style));
      author.setAttribute("data-testid", "message-author");
      const created = new Date(message.created_at);
      const time = el("time", "", fullFormat.format(created));
      time.setAttribute("datetime", message.created_at);
      time.setAttribute("data-testid", "message-time");
      head.append(author, " ", time);
      const content = el("div", "msg-text", message.text);
      content.setAttribute("data-testid", "message-text");
      item.append(head, content);
      if (message.html) {
        const reload = el("a", "msg-formatted", t("formattedVersion"));
        reload.href = location.pathname + "#message-" + encodeURIComponent(message.id);
        reload.addEventListener("click", function () {
          setTimeout(() => location.reload(), 0);
        });
        item.append(reload);
      }
      if (message.attachments && message.attachments.length) {
        const files = el("ul", "attachments");
        message.attachments.forEach(function (attachment) {
          const link = el("a", "", attachment.filename);
          link.href = "/api/v1/messages/" + encodeURIComponent(message.id) + "/attachments/" + encodeURIComponent(attachment.sha256);
          link.setAttribute("download", attachment.filename);
          link.setAttribute("data-testid", "attachment-link");
          const entry = el("li");
          entry.append(link);
          files.append(entry);
        });
        item.append(files);
      }
      if ((style === "outbound" || style === "auto_reply") && message.delivery) item.append(deliveryNode(message));
      messages.append(item);
    }

    function onDelivery(message) {
      if (!message || message.conversation_id !== conversationId || !message.delivery) return;
      const item = document.getElementById("message-" + message.id);
      if (!item) return appendMessage(message);
      const node = item.querySelector('[data-testid="delivery"]');
      if (node) fillDelivery(node, message.delivery);
      else item.append(deliveryNode(message));
    }

    return function (frame) {
      if (frame.type === "message.created") {
        appendMessage(frame.message);
        applyConversation(frame.conversation);
      } else if (frame.type === "delivery.updated") {
        onDelivery(frame.message);
      } else if (frame.type === "conversation.updated") {
        applyConversation(frame.conversation);
      }
    };
  }

  // ---- settings ---------------------------------------------------------------------------

  function setupSettings() {
    const form = document.getElementById("settings-form");
    const status = document.getElementById("settings-status");
    if (!form) return null;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      // only what changed: each field is then refused or saved on its own merits
      const changes = {};
      const initial = (select) => (Array.from(select.options).find((o) => o.defaultSelected) || select.options[0]).value;
      for (const name of ["locale", "time_zone"]) {
        const select = form.elements[name];
        if (select.value !== initial(select)) changes[name] = select.value || null;
      }
      const focus = form.elements.focus_mode;
      if (focus.checked !== focus.defaultChecked) changes.focus_mode = focus.checked;
      if (!Object.keys(changes).length) {
        showStatus(status, t("saved", "Saved"), false);
        return;
      }
      showStatus(status, "…", false);
      try {
        await api("PATCH", "/api/v1/operators/" + encodeURIComponent(operatorId), changes);
        location.reload(); // the page's own language and times follow the new settings
      } catch (error) {
        showStatus(status, t("saveFailed") + ": " + (error.message || ""), true);
      }
    });
    return null;
  }

  // ---- the browser's time zone, for operators who have not chosen one ----------------------

  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const current = document.cookie.split("; ").find((c) => c.startsWith(BROWSER_ZONE_COOKIE + "="));
    if (zone && (!current || decodeURIComponent(current.split("=")[1]) !== zone)) {
      document.cookie = BROWSER_ZONE_COOKIE + "=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (error) {
    // no Intl time zone support: times stay in UTC
  }

  // ---- presence and the live connection ---------------------------------------------------

  const presence = document.getElementById("presence-select");
  const liveStatus = document.getElementById("live-status");
  let socket = null;

  function setLive(state) {
    if (!liveStatus) return;
    liveStatus.dataset.state = state;
    liveStatus.textContent = t(state === "live" ? "live" : state === "offline" ? "offline" : "connecting");
  }

  if (presence) {
    presence.addEventListener("change", function () {
      const value = presence.value;
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "presence", presence: value }));
      } else {
        api("PATCH", "/api/v1/operators/" + encodeURIComponent(operatorId), { presence: value }).catch(function () {
          setLive("offline");
        });
      }
    });
  }

  function connect(onFrame) {
    const path = body.dataset.liveUrl;
    if (!path || !operatorId || !("WebSocket" in window)) return;
    // from the position the page was rendered at; null: no position, start from now
    let lastSeq = body.dataset.liveSeq ? Number(body.dataset.liveSeq) : null;
    let stream = body.dataset.liveStream || null;
    let attempt = 0;

    function open() {
      setLive(attempt ? "offline" : "connecting");
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + path);
      socket.addEventListener("open", function () {
        socket.send(JSON.stringify({ type: "hello", after: lastSeq, stream: stream }));
      });
      socket.addEventListener("message", function (event) {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (frame.type === "reset") {
          location.reload();
          return;
        }
        if (typeof frame.seq === "number" && (lastSeq === null || frame.seq > lastSeq)) lastSeq = frame.seq;
        if (frame.type === "ready") {
          if (frame.stream) stream = frame.stream;
          attempt = 0;
          setLive("live");
          return;
        }
        if (frame.type === "operator.updated" && frame.operator && frame.operator.id === operatorId && presence) {
          presence.value = frame.operator.presence;
        }
        if (onFrame) onFrame(frame);
      });
      socket.addEventListener("close", function () {
        socket = null;
        setLive("offline");
        const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
        attempt += 1;
        setTimeout(open, delay);
      });
    }

    open();
  }

  let onFrame = null;
  if (pageName === "inbox") onFrame = setupInbox();
  else if (pageName === "conversation") onFrame = setupConversation();
  else if (pageName === "settings") setupSettings();
  connect(onFrame);
})();
