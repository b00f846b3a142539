// WhatsApp-style formatting (*bold*, _italic_, ~strike~, `code`, ```mono```, bullets), built as DOM, never
// innerHTML: the web chat's bubbles and the admin page's preview of a message show text exactly alike.
(function () {
  'use strict';

  function h(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }

  // Which links become clickable; set by each call of render.
  var allowLink = function () { return false; };

  var URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/g;

  function appendTextWithLinks(parent, text) {
    var last = 0;
    var m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text)) !== null) {
      if (!allowLink(m[0])) continue;
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = document.createElement('a');
      a.href = m[0];
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      a.textContent = m[0];
      parent.appendChild(a);
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  var MARKS = { '*': 'strong', '_': 'em', '~': 's', '`': 'code' };
  function isWordChar(c) { return !!c && /[0-9A-Za-z\u00C0-\u024F]/.test(c); }
  function isSpace(c) { return !c || /\s/.test(c); }
  // a marker opens only at the start, after a space or after opening punctuation (so "a.__b" or "x*y" stay plain)
  function canOpenAfter(c) { return !c || /[\s([{"'“‘]/.test(c); }

  // Inline *bold*, _italic_, ~strike~, `code` with WhatsApp-like boundaries; nesting allowed (not in code).
  function appendInline(parent, text) {
    var plainStart = 0;
    var i = 0;
    while (i < text.length) {
      var c = text.charAt(i);
      var tag = MARKS[c];
      if (tag && canOpenAfter(text.charAt(i - 1)) && !isSpace(text.charAt(i + 1)) && text.charAt(i + 1) !== c) {
        var j = i + 2;
        var close = -1;
        while (j < text.length) {
          j = text.indexOf(c, j);
          if (j < 0) break;
          if (!isSpace(text.charAt(j - 1)) && text.charAt(j - 1) !== c && !isWordChar(text.charAt(j + 1))) { close = j; break; }
          j += 1;
        }
        if (close > i + 1) {
          if (i > plainStart) appendTextWithLinks(parent, text.slice(plainStart, i));
          var node = document.createElement(tag);
          var inner = text.slice(i + 1, close);
          if (tag === 'code') node.textContent = inner;
          else appendInline(node, inner);
          parent.appendChild(node);
          i = close + 1;
          plainStart = i;
          continue;
        }
      }
      i += 1;
    }
    if (plainStart < text.length) appendTextWithLinks(parent, text.slice(plainStart));
  }

  // Whole message: ```mono``` blocks, lines, blank lines and "• " bullets.
  function render(text, linkAllowed) {
    allowLink = linkAllowed || function () { return false; };
    var root = h('div', 'msg-text');
    var src = String(text == null ? '' : text).replace(/\r\n?/g, '\n');
    var parts = src.split('```');
    // odd indexes are inside ``` ... ``` (an unmatched trailing ``` is kept literally)
    if (parts.length % 2 === 0) { parts[parts.length - 2] += '```' + parts.pop(); }
    var line = null;
    function newLine() { line = null; }
    function currentLine() {
      if (!line) { line = h('div', 'line'); root.appendChild(line); }
      return line;
    }
    parts.forEach(function (part, idx) {
      if (idx % 2 === 1) {
        var mono = part.replace(/^\n/, '').replace(/\n$/, '');
        if (mono.indexOf('\n') >= 0) {
          newLine();
          root.appendChild(h('pre', null, mono));
        } else {
          currentLine().appendChild(h('code', null, mono));
        }
        return;
      }
      var lines = part.split('\n');
      lines.forEach(function (ln, k) {
        if (k > 0) newLine();
        if (ln === '') {
          if (k > 0 && k < lines.length - 1) root.appendChild(h('div', 'blank'));
          return;
        }
        var bullet = /^\s*[•●▪◦]\s+/.exec(ln) || (line === null && /^\s*[-*]\s+(?=\S)/.exec(ln));
        if (bullet && line === null) {
          var row = h('div', 'bullet');
          row.appendChild(h('span', 'bullet-dot', '•'));
          var content = h('span', 'bullet-text');
          appendInline(content, ln.slice(bullet[0].length));
          row.appendChild(content);
          root.appendChild(row);
          line = content;
          return;
        }
        appendInline(currentLine(), ln);
      });
    });
    return root;
  }

  window.WaFormat = { render: render };
})();
