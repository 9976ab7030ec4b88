"""`cyclegan serve MODEL`: a local page to try a model on your own images, and a small HTTP API.

    cyclegan serve horse2zebra                      # http://127.0.0.1:8000/
    curl -F image=@horse.jpg http://127.0.0.1:8000/api/translate?direction=AtoB -o zebra.png

The page: drop or pick an image, see it and its translation side by side, download the
result, switch direction when the model has both generators. The API: POST an image
(multipart field `image`, or the raw file as the body) to /api/translate, get a PNG back;
errors are JSON {"error": one line} with status 400 (bad image), 413 (too large).
GET /api/info describes the model. Needs Flask (pip install 'cyclegan[serve]').
"""

from __future__ import annotations

import argparse
import io
import threading
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .rundir import RunDir
from .config import ConfigError

MAX_BYTES = 20 * 2**20
MAX_PIXELS = 4_000_000  # about 2300 x 1700: a ResNet generator's activations stay within a few GB


class ServeError(RuntimeError):
    """The server cannot start (Flask missing, port taken)."""


def load_translators(model: str, device: str = "auto") -> dict:
    """{direction: Translator}: both directions when MODEL holds both generators (a run directory)."""
    from .pretrained import open_model

    from .import_run import find_weights

    translators = {"AtoB": open_model(model, "AtoB", device)}
    path = Path(model)
    if path.is_dir() and (RunDir(path).config_file.is_file() or find_weights(path)):
        translators["BtoA"] = open_model(model, "BtoA", device)
    return translators


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cyclegan: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
#drop {{ border: 2px dashed #888; border-radius: 8px; padding: 1.5em; text-align: center; margin: 1em 0; }}
#drop.over {{ background: #eef; }}
.pair {{ display: flex; gap: 1.5em; flex-wrap: wrap; }}
figure {{ margin: 0; }} figure img {{ max-width: 45vw; max-height: 70vh; border: 1px solid #ccc; }}
figcaption {{ font-size: 0.9em; color: #555; }}
#error {{ color: #b00; }} #status {{ color: #555; }}
</style></head><body>
<h1>{title}</h1>
<p>{description}</p>
<div id="controls">
  <label id="direction-label" {direction_hidden}>direction
    <select id="direction">{direction_options}</select></label>
</div>
<div id="drop">Drop an image here, or <input type="file" id="file" accept="image/*"></div>
<p id="status"></p><p id="error"></p>
<div class="pair">
  <figure><img id="input" alt="input"><figcaption>input</figcaption></figure>
  <figure><img id="output" alt="translation"><figcaption>translation
    <a id="download" href="#" hidden>download PNG</a></figcaption></figure>
</div>
<script>
const fileInput = document.getElementById('file'), drop = document.getElementById('drop');
const direction = document.getElementById('direction');
let current = null;
function show(msg, err) {{
  document.getElementById('status').textContent = err ? '' : msg;
  document.getElementById('error').textContent = err ? msg : '';
}}
async function translate() {{
  if (!current) return;
  const form = new FormData(); form.append('image', current);
  show('translating...', false);
  const out = document.getElementById('output'), link = document.getElementById('download');
  link.hidden = true;
  try {{
    const r = await fetch('api/translate?direction=' + direction.value, {{method: 'POST', body: form}});
    if (!r.ok) {{ const j = await r.json().catch(() => ({{error: r.statusText}})); show(j.error, true); return; }}
    const url = URL.createObjectURL(await r.blob());
    out.src = url; link.href = url;
    link.download = current.name.replace(/\\.[^.]*$/, '') + '_' + direction.value + '.png';
    link.hidden = false; show('done', false);
  }} catch (e) {{ show('the server did not answer: ' + e, true); }}
}}
function take(file) {{
  if (!file) return;
  current = file;
  document.getElementById('input').src = URL.createObjectURL(file);
  translate();
}}
fileInput.addEventListener('change', () => take(fileInput.files[0]));
direction.addEventListener('change', translate);
drop.addEventListener('dragover', e => {{ e.preventDefault(); drop.classList.add('over'); }});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => {{ e.preventDefault(); drop.classList.remove('over'); take(e.dataTransfer.files[0]); }});
</script></body></html>
"""


def create_app(translators: dict, title: str = "model", description: str = "", max_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS):
    """The Flask app over ready translators ({direction: Translator})."""
    from flask import Flask, Response, jsonify, request
    from werkzeug.exceptions import RequestEntityTooLarge

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    lock = threading.Lock()  # one translation at a time: memory stays that of one image

    def error(message: str, status: int):
        return jsonify(error=message), status

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err):
        return error(f"the upload is larger than {max_bytes // 2**20} MiB; send a smaller image", 413)

    @app.get("/")
    def page():
        import html

        options = "".join(f'<option value="{d}">{d}</option>' for d in translators)
        return Response(PAGE.format(title=html.escape(title), description=html.escape(description),
                                    direction_options=options,
                                    direction_hidden="" if len(translators) > 1 else "hidden"),
                        mimetype="text/html")

    @app.get("/api/info")
    def info():
        return jsonify(model=title, directions=list(translators), max_bytes=max_bytes, max_pixels=max_pixels)

    @app.post("/api/translate")
    def translate():
        direction = request.args.get("direction", next(iter(translators)))
        if direction not in translators:
            return error(f"direction {direction!r} is not available; this model has {', '.join(translators)}", 400)
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("image")
            data = upload.read() if upload is not None else b""
        else:  # the raw file as the body, whatever Content-Type the client put on it
            data = request.get_data(parse_form_data=False)
        if not data:
            return error("no image: send it as the multipart field 'image' or as the request body", 400)
        try:
            img = Image.open(io.BytesIO(data))
            w, h = img.size  # from the header: checked before any pixel is decoded
            if w * h > max_pixels:
                return error(f"the image is {w}x{h} = {w * h} pixels, more than the limit of {max_pixels}; "
                             "scale it down first", 413)
            img.load()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as err:
            return error(f"not a readable image: {str(err).splitlines()[0] if str(err) else type(err).__name__}", 400)
        translator = translators[direction]
        img = img.convert("RGB" if translator.in_channels == 3 else "L")
        with lock:
            out = translator(img)
        buffer = io.BytesIO()
        out.save(buffer, format="PNG")
        return Response(buffer.getvalue(), mimetype="image/png")

    return app


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    try:
        from werkzeug.serving import make_server
    except ImportError as err:
        raise ServeError(f"`cyclegan serve` needs Flask ({err}); pip install 'cyclegan[serve]'") from None
    from .pretrained import ZOO
    from .study.commands import _check_port_free

    translators = load_translators(args.model, args.device)
    description = ZOO[args.model].translates if args.model in ZOO else str(args.model)
    app = create_app(translators, Path(args.model).name, description, args.max_bytes, args.max_pixels)
    _check_port_free(args.host, args.port)
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except (OSError, SystemExit) as err:
        raise ServeError(f"cannot listen on {args.host}:{args.port} ({err}); pick another --port") from None
    print(f"serving {args.model} at http://{args.host}:{server.server_port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
