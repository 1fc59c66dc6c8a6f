// Packwork's own browser code: tabs, reference pickers, the filter builder and kanban moves.
// Loaded as a file (no inline script), so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  function csrf() { return document.body.dataset.csrf || ""; }

  // Tabs: a tab shows its panel and hides its siblings'.
  document.addEventListener("click", function (event) {
    var tab = event.target.closest('[role="tab"]');
    if (!tab) return;
    var list = tab.closest('[role="tablist"]');
    list.querySelectorAll('[role="tab"]').forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
  });

  // A form that asks first (a pack action's `confirm`) is sent only when the person agrees.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // Reference pickers: choosing an option fills the hidden id and the visible title.
  document.addEventListener("click", function (event) {
    var option = event.target.closest(".pick");
    var clear = event.target.closest("[data-clear]");
    var picker = (option || clear) && (option || clear).closest("[data-picker]");
    if (!picker) return;
    picker.querySelector("[data-picked]").value = option ? option.dataset.id : "";
    picker.querySelector("[data-picker-text]").value = option ? option.dataset.title : "";
    picker.querySelector(".options-box").innerHTML = "";
  });

  // The filter builder appends `field op 'value'` to the filter text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-add-condition]");
    if (!button) return;
    var builder = button.closest("[data-builder]");
    var raw = builder.querySelector("[data-value]").value.trim();
    var value = /^-?\d+(\.\d+)?$/.test(raw) ? raw : "'" + raw.replace(/'/g, "''") + "'";
    var condition = builder.querySelector("[data-field]").value + " " + builder.querySelector("[data-op]").value + " " + value;
    var text = document.getElementById("filter-text");
    text.value = text.value.trim() ? text.value.trim() + " and " + condition : condition;
  });

  // Kanban: a card dropped in another lane is saved through the record service; a refusal
  // (a stage gate, a validation, a permission) puts the card back and shows why.
  function showBoardMessage(text) {
    var box = document.getElementById("board-message");
    box.textContent = text;
    box.hidden = !text;
  }

  function problemText(problem) {
    var lines = [problem.detail || "refused"];
    Object.keys(problem.errors || {}).forEach(function (field) {
      problem.errors[field].forEach(function (message) { lines.push(field + ": " + message); });
    });
    return lines.join(" — ");
  }

  function count(lane, delta) {
    var counter = lane.closest(".lane").querySelector("[data-count]");
    counter.textContent = String(parseInt(counter.textContent, 10) + delta);
  }

  // A lane's total moves with the card: the card carries its raw value, the total its raw sum.
  function decimals(text) { return (String(text).split(".")[1] || "").length; }

  function addToTotal(lane, card, sign) {
    var sum = lane.closest(".lane").querySelector("[data-sum]");
    var amount = card.dataset.value;
    if (!sum || !amount) return;
    var digits = Math.max(decimals(sum.dataset.value), decimals(amount));
    var value = parseFloat(sum.dataset.value || "0") + sign * parseFloat(amount);
    sum.dataset.value = value.toFixed(digits);
    sum.textContent = value.toLocaleString("en-US", {minimumFractionDigits: digits, maximumFractionDigits: digits});
  }

  function moveCard(board, event) {
    var card = event.item, from = event.from, to = event.to, index = event.oldIndex;
    if (from === to) return;
    var body = new URLSearchParams({field: board.dataset.field, value: to.dataset.lane,
                                    version: card.dataset.version, csrf_token: csrf()});
    fetch(card.dataset.move, {method: "POST", body: body, credentials: "same-origin",
                              headers: {"X-CSRF-Token": csrf(), "Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      })
      .then(function (answer) {
        if (answer.ok) {
          card.dataset.version = answer.data.version;
          count(from, -1); count(to, 1);
          addToTotal(from, card, -1); addToTotal(to, card, 1);
          showBoardMessage("");
          showLane(card, to);
          return;
        }
        putBack(card, from, index);
        showBoardMessage(problemText(answer.data));
      })
      .catch(function () {
        putBack(card, from, index);
        showBoardMessage("The move could not be saved; try again.");
      });
  }

  function showLane(card, lane) {
    var select = card.querySelector("[data-move-to]");
    if (select) select.value = lane.dataset.lane;
  }

  function putBack(card, from, index) {
    from.insertBefore(card, from.children[index] || null);
    showLane(card, from);
  }

  // Without a mouse: each card's "move to" list makes the same move as a drop.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("[data-move-to]");
    if (!select) return;
    var card = select.closest(".kanban-card"), from = card.parentElement, board = card.closest("[data-board]");
    var to = Array.prototype.find.call(board.querySelectorAll("[data-lane]"), function (lane) {
      return lane.dataset.lane === select.value;
    });
    if (!to || to === from) return;
    var index = Array.prototype.indexOf.call(from.children, card);
    to.appendChild(card);
    moveCard(board, {item: card, from: from, to: to, oldIndex: index});
    select.focus();
  });

  function startBoards(root) {
    if (typeof Sortable === "undefined") return;
    root.querySelectorAll("[data-board]").forEach(function (board) {
      board.querySelectorAll("[data-lane]").forEach(function (lane) {
        if (lane.dataset.sortable) return;
        lane.dataset.sortable = "1";
        Sortable.create(lane, {group: "lanes", animation: 120, filter: "select", preventOnFilter: false, onEnd: function (event) { moveCard(board, event); }});
      });
    });
  }

  // The studio's layout editor: a dragged field takes the section it is dropped in and its
  // place there, written into the same selects and positions the form posts without a mouse.
  function renumber(editor) {
    editor.querySelectorAll("[data-section-fields]").forEach(function (list) {
      Array.prototype.forEach.call(list.children, function (item, index) {
        item.querySelector("[data-place]").value = list.dataset.sectionFields;
        item.querySelector("[data-order]").value = index + 1;
      });
    });
  }

  function startLayoutEditors(root) {
    if (typeof Sortable === "undefined") return;
    root.querySelectorAll("[data-layout-editor]").forEach(function (editor) {
      editor.querySelectorAll("[data-section-fields]").forEach(function (list) {
        if (list.dataset.sortable) return;
        list.dataset.sortable = "1";
        Sortable.create(list, {group: "layout", animation: 120, filter: "select, input", preventOnFilter: false,
                               onEnd: function () { renumber(editor); }});
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { startBoards(document); startLayoutEditors(document); });
  document.addEventListener("htmx:afterSwap", function (event) { startBoards(event.target); startLayoutEditors(event.target); });
})();
