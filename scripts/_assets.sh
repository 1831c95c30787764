# Sourced by the scripts: the web app's front-end libraries come from npm
# (versions pinned in package-lock.json) and are copied into the package's
# static/vendor folder, which git ignores. Nothing is fetched at run time and
# no library code is committed. Without npm the pages still work: the model
# editor falls back to a plain text area and charts to their data tables.
vendor=src/leadscore/_web/static/vendor
if command -v npm >/dev/null 2>&1; then
    npm ci --silent --no-audit --no-fund
    mkdir -p "$vendor"
    cp node_modules/codemirror/lib/codemirror.js node_modules/codemirror/lib/codemirror.css \
       node_modules/codemirror/mode/yaml/yaml.js \
       node_modules/chart.js/dist/chart.umd.min.js "$vendor/"
else
    echo "npm not found: the web app runs without its editor and charts" >&2
fi
