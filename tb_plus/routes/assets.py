"""The bundled frontend: tb_plus/static/index.js and index.css, built from tb_plus_frontend/."""

import os

from tensorboard import errors
from tensorboard.backend import http_util
from werkzeug import wrappers

STATIC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")


def _serve(name, mimetype):
    def handler(request):
        path = os.path.join(STATIC, name)
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError:
            raise errors.NotFoundError(
                f"{name} is not built: run `npm install && npm run build` in tb_plus_frontend/ (or reinstall tb_plus)"
            )
        return http_util.Respond(request, body, mimetype)

    return wrappers.Request.application(handler)


index_js = _serve("index.js", "text/javascript")
index_css = _serve("index.css", "text/css")


_STANDALONE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TB+</title>
<script type="module" src="standalone.js"></script>
</head>
<body></body>
</html>
"""

# TensorBoard's CSP forbids inline scripts: the page loads this module, which starts the app.
_STANDALONE_JS = 'import { render } from "./index.js";\nrender();\n'


def _standalone_html(request):
    return http_util.Respond(request, _STANDALONE_HTML, "text/html")


def _standalone_js(request):
    return http_util.Respond(request, _STANDALONE_JS, "text/javascript")


standalone_html = wrappers.Request.application(_standalone_html)
standalone_js = wrappers.Request.application(_standalone_js)
