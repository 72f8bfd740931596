// MathJax 3 for the \( ... \) and \[ ... \] spans that pymdownx.arithmatex (generic mode)
// leaves in the pages: typeset only those spans, on every page load.
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]],
        processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"}
};
