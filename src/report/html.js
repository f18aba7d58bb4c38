(function () {
  'use strict';
  // Sorting, filtering and paging of the server-rendered tables. Everything on
  // the page is already HTML; this script only reads data-* attributes and
  // text, toggles classes, and builds cells with textContent (never as markup).
  var PAGE = 100;
  function all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function rowsOf(table) { return Array.prototype.slice.call(table.tBodies[0].rows); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  // ---- paging: filtered-out rows carry flt-off; shown rows off the page carry pg-off.
  var pagers = {};
  function pager(table) {
    var box = document.querySelector('.pager[data-for="' + table.id + '"]');
    var state = { page: 0 };
    var prev = el('button', '', '\u2039 previous');
    var next = el('button', '', 'next \u203a');
    var info = el('span', 'count');
    prev.type = next.type = 'button';
    if (box) { box.appendChild(prev); box.appendChild(info); box.appendChild(next); }
    function shown() { return rowsOf(table).filter(function (r) { return !r.classList.contains('flt-off'); }); }
    state.refresh = function () {
      var rows = shown();
      var pages = Math.max(1, Math.ceil(rows.length / PAGE));
      state.page = Math.min(Math.max(state.page, 0), pages - 1);
      var lo = state.page * PAGE, hi = lo + PAGE;
      rowsOf(table).forEach(function (r) { r.classList.remove('pg-off'); });
      rows.forEach(function (r, i) { if (i < lo || i >= hi) { r.classList.add('pg-off'); } });
      if (box) {
        box.hidden = pages === 1;
        info.textContent = 'rows ' + (rows.length ? lo + 1 : 0) + '\u2013' + Math.min(hi, rows.length) +
          ' of ' + rows.length + ' (page ' + (state.page + 1) + ' of ' + pages + ')';
        prev.disabled = state.page === 0;
        next.disabled = state.page >= pages - 1;
      }
    };
    state.show = function (row) {
      var i = shown().indexOf(row);
      if (i >= 0) { state.page = Math.floor(i / PAGE); state.refresh(); }
    };
    prev.addEventListener('click', function () { state.page -= 1; state.refresh(); });
    next.addEventListener('click', function () { state.page += 1; state.refresh(); });
    pagers[table.id] = state;
    state.refresh();
    return state;
  }

  // ---- sorting: a header with data-sort="num|text" sorts by each cell's data-v or text.
  function sortable(table) {
    var heads = all('thead th', table);
    heads.forEach(function (th, col) {
      var kind = th.getAttribute('data-sort');
      if (!kind) { return; }
      th.tabIndex = 0;
      function go() {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var keyed = rowsOf(table).map(function (r, i) {
          var c = r.cells[col];
          var v = c ? (c.hasAttribute('data-v') ? c.getAttribute('data-v') : c.textContent) : '';
          return { r: r, v: kind === 'num' ? (parseFloat(v) || 0) : v.toLowerCase(), i: i };
        });
        keyed.sort(function (a, b) {
          var d = a.v < b.v ? -1 : a.v > b.v ? 1 : a.i - b.i;
          return asc ? d : -d;
        });
        var body = table.tBodies[0], frag = document.createDocumentFragment();
        keyed.forEach(function (k) { frag.appendChild(k.r); });
        body.appendChild(frag);
        if (pagers[table.id]) { pagers[table.id].page = 0; pagers[table.id].refresh(); }
      }
      th.addEventListener('click', go);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
    });
  }

  // ---- filters: inputs with data-filter-for name a table; each row is tested against all.
  var filters = {};
  function filterable(tableId, test, count, noun) {
    var table = document.getElementById(tableId);
    if (!table) { return; }
    var inputs = all('[data-filter-for="' + tableId + '"]');
    var out = document.getElementById(count);
    function apply() {
      var vals = {};
      inputs.forEach(function (i) { vals[i.getAttribute('data-key')] = i.value; });
      if (vals.text) { vals.text = vals.text.toLowerCase(); }
      var n = 0, rows = rowsOf(table);
      rows.forEach(function (r) {
        var ok = test(r, vals);
        r.classList.toggle('flt-off', !ok);
        if (ok) { n += 1; }
      });
      if (out) { out.textContent = n === rows.length ? 'all ' + n + ' ' + noun : n + ' of ' + rows.length + ' ' + noun; }
      if (pagers[tableId]) { pagers[tableId].page = 0; pagers[tableId].refresh(); }
    }
    inputs.forEach(function (i) { i.addEventListener(i.tagName === 'INPUT' ? 'input' : 'change', apply); });
    filters[tableId] = {
      apply: apply,
      reset: function () { inputs.forEach(function (i) { i.value = ''; }); apply(); }
    };
    apply();
  }
  function textMatch(r, text) { return !text || r.textContent.toLowerCase().indexOf(text) >= 0; }

  all('table[data-page]').forEach(function (t) { pager(t); });
  all('table').forEach(sortable);
  filterable('findings-t', function (r, v) {
    return (!v.sev || Number(r.getAttribute('data-sev')) >= Number(v.sev)) &&
      (!v.flag || r.getAttribute('data-flag') === v.flag) &&
      (!v.acct || r.getAttribute('data-acct') === v.acct) &&
      textMatch(r, v.text);
  }, 'findings-count', 'findings');
  filterable('coverage-t', function (r, v) {
    return (!v.status || r.getAttribute('data-status') === v.status ||
      (v.status === 'flagged' && r.getAttribute('data-flagged') === '1')) && textMatch(r, v.text);
  }, 'coverage-count', 'accounts');

  // ---- links into a paged or filtered table: show the row's page, then go there.
  function reveal(id) {
    var target = id && document.getElementById(id);
    if (!target || target.tagName !== 'TR') { return; }
    var table = target.closest('table');
    if (target.classList.contains('flt-off') && filters[table.id]) { filters[table.id].reset(); }
    if (pagers[table.id]) { pagers[table.id].show(target); }
    all('tr.hit').forEach(function (r) { r.classList.remove('hit'); });
    target.classList.add('hit');
    target.scrollIntoView({ block: 'center' });
  }
  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a[href^="#"]');
    if (!a) { return; }
    var id = a.getAttribute('href').slice(1);
    var t = document.getElementById(id);
    if (t && t.tagName === 'TR') {
      e.preventDefault();
      if (history.pushState) { history.pushState(null, '', '#' + id); }
      reveal(id);
    }
  });
  window.addEventListener('hashchange', function () { reveal(location.hash.slice(1)); });
  if (location.hash) { reveal(location.hash.slice(1)); }

  // ---- one account's sessions by day and hour, from its row's data-h ("day.hour.count ...").
  var org = document.getElementById('heat-org');
  var panel = document.getElementById('tl-panel');
  function showHours(row) {
    if (!org || !panel) { return; }
    var days = all('tbody th', org).map(function (th) { return th.textContent; });
    var counts = {}, max = 0;
    (row.getAttribute('data-h') || '').split(' ').forEach(function (p) {
      var f = p.split('.');
      if (f.length !== 3) { return; }
      var k = Number(f[0]) * 24 + Number(f[1]), n = Number(f[2]);
      counts[k] = (counts[k] || 0) + n;
      if (counts[k] > max) { max = counts[k]; }
    });
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    panel.appendChild(el('h3', '', 'Sessions of ' + row.cells[0].textContent + ' by day and hour (UTC)'));
    var t = el('table', 'heat'), head = el('tr'), body = el('tbody'), thead = el('thead');
    head.appendChild(el('th', '', 'day'));
    for (var h = 0; h < 24; h += 1) { head.appendChild(el('th', '', (h < 10 ? '0' : '') + h)); }
    thead.appendChild(head);
    t.appendChild(thead);
    days.forEach(function (d, di) {
      var tr = el('tr');
      tr.appendChild(el('th', '', d));
      for (var h = 0; h < 24; h += 1) {
        var n = counts[di * 24 + h] || 0;
        var td = el('td', 'h' + (n ? Math.max(1, Math.ceil(5 * n / max)) : 0), n ? String(n) : '');
        td.title = d + ' ' + (h < 10 ? '0' : '') + h + ':00 UTC: ' + n + (n === 1 ? ' session' : ' sessions');
        tr.appendChild(td);
      }
      body.appendChild(tr);
    });
    t.appendChild(body);
    var close = el('button', '', 'close');
    close.type = 'button';
    close.addEventListener('click', function () { while (panel.firstChild) { panel.removeChild(panel.firstChild); } });
    panel.appendChild(t);
    panel.appendChild(close);
    panel.scrollIntoView({ block: 'nearest' });
  }
  all('#tl-t button.linkish').forEach(function (b) {
    b.addEventListener('click', function () { showHours(b.closest('tr')); });
  });

  // ---- printing: every row and every collapsed list, unless asked for the screen's pages only.
  var printAll = document.getElementById('print-all');
  if (printAll) {
    printAll.addEventListener('change', function () {
      document.documentElement.classList.toggle('print-pages', !printAll.checked);
    });
  }
  window.addEventListener('beforeprint', function () {
    all('details.more').forEach(function (d) { d.open = true; });
  });
})();
