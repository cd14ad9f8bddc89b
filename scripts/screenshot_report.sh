#!/usr/bin/env bash
# Screenshots of a `snakemake --report` in headless Chromium, to look at the report without a
# desktop (docs/report.md).
#
# Usage: scripts/screenshot_report.sh REPORT [OUT_DIR] [CATEGORY] [SUBCATEGORY]
#
#   REPORT       results/<run>/report.html, or the .zip that `snakemake --report x.zip` writes
#   OUT_DIR      where the PNGs go (default: REPORT without its suffix, plus -screenshots/)
#   CATEGORY     the category page to take (default "2. Training")
#   SUBCATEGORY  its subcategory whose file table is shown (default: the first by name)
#
# Writes three PNGs into OUT_DIR:
#   start.png     the start page: the workflow description (workflow/report/workflow.rst, with
#                 the run's config) and the category menu;
#   category.png  CATEGORY / SUBCATEGORY: the table of its files with their labels, and its
#                 first figure (else the category's) in the main panel;
#   caption.png   a file of that table opened (the first that is not a figure): its labels,
#                 caption, size, rule and parameters.
#
# The report is a JavaScript app with no addresses for its pages, so the script copies the
# HTML (into a temporary folder) with a few lines appended that open the page through the
# app's own functions, then lets Chromium run it (`--virtual-time-budget`) and take the shot.
#
# Needs: chromium (Debian/Ubuntu: `apt-get install chromium`; or CHROMIUM=/path/to/chrome or
# chromium-browser), python3, and unzip for a .zip. Settings: WINDOW (pixels, default 1600,1000),
# BUDGET (virtual milliseconds to let the page run, default 20000).
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit $(( $# < 1 ))
fi
report=$1
out=${2:-${report%.*}-screenshots}
category=${3:-2. Training}
subcategory=${4:-}
window=${WINDOW:-1600,1000}
budget=${BUDGET:-20000}

chromium=${CHROMIUM:-}
if [ -z "$chromium" ]; then
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then chromium=$c; break; fi
    done
fi
if [ -z "$chromium" ]; then
    echo "screenshot_report.sh: no chromium on PATH (Debian/Ubuntu: apt-get install chromium; or set CHROMIUM)" >&2
    exit 1
fi
if [ ! -f "$report" ]; then
    echo "screenshot_report.sh: $report: no such report (make one: snakemake --report $report)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The page to open: the HTML itself, or the report.html inside the zip (beside its data/).
case $report in
*.zip)
    unzip -q "$report" -d "$tmp/zip"
    html=$(find "$tmp/zip" -name report.html | head -n 1)
    if [ -z "$html" ]; then
        echo "screenshot_report.sh: $report: no report.html inside" >&2
        exit 1
    fi
    ;;
*) html=$report ;;
esac
# the copies go beside the report's data/ (a zip's) or into the temporary folder (an HTML
# report embeds everything)
pagedir=$tmp
case $report in *.zip) pagedir=$(dirname "$html") ;; esac

# shot NAME VIEW: a copy of the report opening VIEW (start, category or caption), taken as
# OUT_DIR/NAME.png.
shot() {
    local page
    page=$pagedir/screenshot-$1.html
    python3 - "$html" "$page" "$2" "$category" "$subcategory" "${window#*,}" <<'EOF'
import json, sys

source, page, view, category, subcategory, height = sys.argv[1:]
# headless Chromium lays the page out in a viewport shorter than the shot: give the app's
# full-height panels the shot's height, or the bottom of every shot stays blank; and no CSS
# transitions, or a shot can catch the menu half-way from unstyled to styled
opener = """
<style>#app .h-screen { height: %spx !important; } #app * { transition: none !important; }</style>
<script>
(function () {
  var shot = %s;
  function open() {
    if (typeof app === "undefined" || !app || !document.querySelector("#app nav, #app div")) {
      return setTimeout(open, 100);
    }
    if (shot.view === "start") { return; }
    var cat = categories[shot.category];
    if (!cat) {
      document.body.innerHTML = "<h1 style='color:red'>no category " + shot.category + "; the report has: " +
        Object.keys(categories).join(", ") + "</h1>";
      return;
    }
    var sub = shot.subcategory || Object.keys(cat).sort()[0];
    var files = cat[sub] || [];
    function isFigure(p) { return (results[p].mime_type || "").indexOf("image/") === 0; }
    var figure = files.find(isFigure) || [].concat.apply([], Object.values(cat)).find(isFigure);
    var view = {navbarMode: "subcategory", category: shot.category, subcategory: sub};
    if (figure) {
      view.content = "img"; view.contentPath = results[figure].data_uri; view.resultPath = figure;
    }
    if (shot.view === "caption" && files.length) {
      view.navbarMode = "resultinfo";
      view.resultPath = files.find(function (p) { return !isFigure(p); }) || files[0];
    }
    app.setView(view);
  }
  open();
})();
</script>
""" % (int(height), json.dumps({"view": view, "category": category, "subcategory": subcategory}))
html = open(source, encoding="utf-8", errors="replace").read()
if view != "start":  # a page the report does not have: say which it has
    import re

    found = re.search(r'<script id="categories">\s*var categories = (.*?);\s*</script>', html, re.DOTALL)
    categories = json.loads(found.group(1)) if found else {}
    if category not in categories or (subcategory and subcategory not in categories[category]):
        have = {c: sorted(s) for c, s in categories.items()}
        sys.exit(f"screenshot_report.sh: no category {category!r} / subcategory {subcategory!r} in {source}; "
                 f"it has {have}")
at = html.rfind("</body>")
open(page, "w", encoding="utf-8").write(html[:at] + opener + html[at:] if at >= 0 else html + opener)
EOF
    local sandbox=()
    if [ "$(id -u)" = 0 ]; then sandbox=(--no-sandbox); fi
    "$chromium" --headless "${sandbox[@]}" --disable-gpu --hide-scrollbars --mute-audio \
        --user-data-dir="$tmp/profile" --window-size="$window" --virtual-time-budget="$budget" \
        --screenshot="$out/$1.png" "file://$page" \
        >"$tmp/chromium-$1.log" 2>&1 || { cat "$tmp/chromium-$1.log" >&2; rm -f "$page"; return 1; }
    rm -f "$page"
    test -s "$out/$1.png" || { echo "screenshot_report.sh: no $out/$1.png" >&2; cat "$tmp/chromium-$1.log" >&2; return 1; }
    echo "$out/$1.png"
}

shot start start
shot category category
shot caption caption
