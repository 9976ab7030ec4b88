"""HTML (Jinja, autoescaped) and the small script of the study pages, kept inline so the package
needs no template data files."""

from __future__ import annotations

BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Real or fake?</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 900px; margin: 2em auto; padding: 0 1em; color: #222; }
 .pair { display: flex; gap: 2em; justify-content: center; margin: 1.5em 0; }
 .pair button { padding: 0; border: 3px solid #ccc; background: #eee; cursor: pointer; width: 320px; height: 320px; }
 .pair button:hover, .pair button:focus { border-color: #2a6ebb; }
 .pair img { width: 100%; height: 100%; object-fit: contain; display: block; }
 .feedback { padding: .6em 1em; border-radius: 4px; font-weight: 600; }
 .feedback.correct { background: #d8f0d8; } .feedback.wrong { background: #f6d6d6; }
 .notice { background: #eef3fb; padding: .6em 1em; border-radius: 4px; }
 .progress { color: #666; }
</style></head>
<body>{% block body %}{% endblock %}
<script src="{{ url_for('script') }}"></script></body></html>
"""

INDEX = """{% extends "base.html" %}{% block body %}
<h1>Real or fake?</h1>
{% if finished %}
<p id="already-done">You have already completed this study. Each person takes part once. Thank you!</p>
{% else %}
<p>You will see {{ n_total }} pairs of images. In each pair one image is a real photograph and the other was
made by a computer program. Click the image you think is <b>real</b>.</p>
<p>The first {{ n_practice }} pairs are practice: you are told whether you were right. The next {{ n_scored }}
count, and you get no feedback.{% if time_limit %} Each pair is shown for {{ time_limit }} seconds; after that
the images are hidden, and you still choose.{% endif %}</p>
<form method="post" action="{{ url_for('start') }}"><button type="submit" id="start">Start</button></form>
{% endif %}
{% endblock %}"""

TRIAL = """{% extends "base.html" %}{% block body %}
{% if feedback %}
<p id="feedback" class="feedback {{ 'correct' if feedback.correct else 'wrong' }}">
{{ 'Correct' if feedback.correct else 'Wrong' }}: the {{ feedback.real_side }} image was the real one.</p>
{% endif %}
{% if first_scored %}<p id="practice-over" class="notice">Practice is over. The next {{ n_scored }} pairs count,
and you will not be told whether you were right.</p>{% endif %}
<p class="progress" id="progress">{{ 'Practice' if practice else 'Pair' }} {{ number }} of {{ out_of }}</p>
<h2>Which image is real? Click it.</h2>
<form method="post" action="{{ url_for('answer') }}" id="answer-form"
      data-time-limit="{{ time_limit if time_limit else '' }}">
 <input type="hidden" name="trial" value="{{ trial_id }}">
 <div class="pair">
  <button type="submit" name="choice" value="left" id="choose-left" aria-label="left image is real">
   <img class="stimulus" id="img-left" src="{{ url_for('image', token=left) }}" alt="left image"></button>
  <button type="submit" name="choice" value="right" id="choose-right" aria-label="right image is real">
   <img class="stimulus" id="img-right" src="{{ url_for('image', token=right) }}" alt="right image"></button>
 </div>
</form>
<p id="hidden-note" class="notice" hidden>Time is up: the images are hidden. Click the side you think was real.</p>
{% endblock %}"""

DONE = """{% extends "base.html" %}{% block body %}
<h1>Thank you!</h1>
{% if feedback %}<p id="feedback" class="feedback {{ 'correct' if feedback.correct else 'wrong' }}">
{{ 'Correct' if feedback.correct else 'Wrong' }}: the {{ feedback.real_side }} image was the real one.</p>{% endif %}
<p id="finished">You have finished the study. Your participant number is <b>{{ participant }}</b>.</p>
{% endblock %}"""

ERROR = """{% extends "base.html" %}{% block body %}
<h1>{{ code }} {{ title }}</h1><p id="error">{{ message }}</p>
<p><a href="{{ url_for('index') }}">Back to the start page</a></p>
{% endblock %}"""

# Hides the images `data-time-limit` seconds after they have loaded; stops a double submission.
SCRIPT = """(function () {
  var form = document.getElementById('answer-form');
  if (!form) return;
  var sent = false;
  form.addEventListener('submit', function (e) { if (sent) { e.preventDefault(); } sent = true; });
  var limit = parseFloat(form.getAttribute('data-time-limit'));
  if (!(limit > 0)) return;
  function hide() {
    var imgs = form.querySelectorAll('img.stimulus');
    for (var i = 0; i < imgs.length; i++) imgs[i].style.visibility = 'hidden';
    form.setAttribute('data-expired', '1');
    document.getElementById('hidden-note').hidden = false;
  }
  function start() { setTimeout(hide, limit * 1000); }
  if (document.readyState === 'complete') start(); else window.addEventListener('load', start);
})();
"""
