"""The generator explored in the browser: `python -m dcgan_mnist.demo --pretrained` serves a local page.

The page asks what `generate` asks (labels as --labels takes them, a number per label, a seed, the weights)
and answers with what it writes: the grid of --out, one row per label, and the arrays of --npz, both to
download; and the walks of --interpolate (classes: from one label to another; latent: between two noise
draws). Every image comes from generate.py's own functions (the block "generate.py's calls" below).

Gradio draws the page (the `demo` extra: pip install -e '.[demo]'), the field's convention for model
demos. It is served from this machine alone: listening on 127.0.0.1 unless --host says otherwise, no
share link, no analytics or update check, system fonts (no font or script from elsewhere).

With --checkpoint-dir the page follows the folder: each request first looks for a newer checkpoint
(the `checkpoint` record names one only once it is written whole) and draws from it; the page says
which checkpoint every answer came from. --checkpoint and --pretrained stay on what they name.
"""
import argparse
import errno
import html
import json
import math
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque

import numpy as np
import tensorflow as tf

from dcgan_mnist import checkpoint, data, generate
from dcgan_mnist.cli import OneLineErrorParser, UserError, add_verbose, run
from dcgan_mnist.config import Config, add_checkpoint_arguments
from dcgan_mnist.files import atomic_write
from dcgan_mnist.grid import save_visualization

# Bounds of one request, checked before anything is drawn. A 10 x 50 or 50 x 10 grid fits; the largest
# request is MAX_CELLS images plus generate's 500 context draws in one batch (measured at the default sizes:
# the server's memory from 0.87 to 1.0 GB), and requests are drawn one at a time.
MAX_LABELS = 50  # rows: labels, or pairs of a class walk
MAX_PER_LABEL = 50  # columns of a grid of digits
MAX_STEPS = 50  # columns of a walk
MAX_CELLS = 500  # images in one request
MAX_TEXT = 1000  # characters of the labels or pairs field, refused before it is read
MAX_SEED = 2 ** 32 - 1
MAX_WAITING = 64  # requests queued at once; Gradio refuses more ("queue is full") until some are answered
KEPT_ANSWERS = 64  # answers whose files stay in the work folder (Gradio serves copies of its own)
WEIGHT_CHOICES = {"average": "averaged generator", "trained": "trained weights"}


# ---------------------------------------------------------------- generate.py's calls, all of them

def class_names(cfg):
    """The run's labels by name: the digits, or the classes of an image folder."""
    return cfg.label_names()


def read_labels(text, cfg):
    return generate.parse_labels(text, class_names(cfg))


def read_pairs(text, cfg):
    return generate.parse_pairs(text, class_names(cfg))


def default_labels(cfg):
    return generate.default_labels(class_names(cfg))


def default_pairs(cfg):
    return generate.default_pairs(class_names(cfg))


def draw_digits(source, labels, n_per_label, seed):
    """uint8 images [len(labels) * n_per_label, H, W] (or [..., 3]), row by row, and their labels."""
    return generate.generate(source.generator, labels, n_per_label, seed)


def draw_walks(source, mode, rows, steps, seed):
    """uint8 [len(rows), steps, H, W] (or [..., 3]): a class walk per pair, or a latent walk per label."""
    if mode == "classes":
        return generate.class_interpolation(source.generator, rows, steps, seed)
    return generate.latent_interpolation(source.generator, rows, steps, seed)


# ---------------------------------------------------------------- the generators and the answers

def whole_number(value, name, low, high):
    """value as an int in [low, high], or ValueError naming the field. The API takes any JSON here."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (number and value == int(value) and low <= value <= high):
        raise ValueError(f"{name} {value!r}: give a whole number from {low} to {high}")
    return int(value)


def field_text(text, name):
    text = "" if text is None else text  # Gradio sends an emptied field as null
    if not isinstance(text, str):
        raise ValueError(f"{name}: give text")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name}: {len(text)} characters; at most {MAX_TEXT}")
    if not text.strip():
        raise ValueError(f"{name}: empty; type one or more, e.g. 2026")
    return text.strip()


def check_size(rows, columns, what):
    if len(rows) > MAX_LABELS:
        raise ValueError(f"{len(rows)} {what}: at most {MAX_LABELS} rows")
    if len(rows) * columns > MAX_CELLS:
        raise ValueError(f"{len(rows)} rows x {columns} = {len(rows) * columns} images: at most {MAX_CELLS} "
                         f"in one request")


class Demo:
    """What the page draws from (a Source per kind of weights the checkpoint has) and the answers
    it writes. One draw at a time (the lock): a draw fills the 2 cores alone, and a newer checkpoint
    is swapped in between draws, never during one."""

    def __init__(self, args, workdir):
        self.args = args
        self.follows = not args.pretrained and args.checkpoint is None
        self.folder = args.checkpoint_dir or Config.checkpoint_dir
        self.lock = threading.Lock()
        self.sources = self.load(args.checkpoint)
        self.unreadable = None  # a newer checkpoint that failed to load, and why: not tried again
        self.workdir = workdir
        self.answers = deque()

    def load(self, path):
        """{"average": Source, "trained": Source}, those the checkpoint has (only --weights' if given)."""
        args = argparse.Namespace(**{**vars(self.args), "checkpoint": path})
        first = checkpoint.load_generator(args)
        sources = {first.drawn: first}
        if first.drawn == "average" and args.weights is None and not args.pretrained:
            # From the same file, even if training writes a newer one meanwhile.
            both = argparse.Namespace(**{**vars(args), "checkpoint": first.path, "weights": "trained"})
            sources["trained"] = checkpoint.load_generator(both)
        return sources

    @property
    def path(self):
        return next(iter(self.sources.values())).path

    def follow(self):
        """Under the lock: draw from the folder's newest checkpoint from now on, if it is newer and loads."""
        latest = tf.train.latest_checkpoint(self.folder)
        if not latest or latest == self.path or (self.unreadable and self.unreadable[0] == latest):
            return
        try:
            self.sources = self.load(latest)
            self.unreadable = None
        except UserError as e:
            self.unreadable = (latest, str(e))
        except Exception as e:  # damaged after it was recorded: a truncated file raises IndexError, among others
            self.unreadable = (latest, f"{latest}: cannot restore checkpoint ({type(e).__name__})")

    def source(self, weights):
        if self.follows:
            self.follow()
        if weights not in self.sources:
            have = " or ".join(WEIGHT_CHOICES[w] for w in self.sources)
            raise ValueError(f"weights {weights!r}: this generator has the {have} only")
        return self.sources[weights]

    def answer_folder(self):
        """Under the lock: a new folder for one answer's files; the oldest beyond KEPT_ANSWERS are deleted (Gradio
        has copied them as it answered). Names are fixed here: nothing typed on the page becomes a path."""
        folder = tempfile.mkdtemp(dir=self.workdir)
        self.answers.append(folder)
        if len(self.answers) > KEPT_ANSWERS:
            shutil.rmtree(self.answers.popleft(), ignore_errors=True)
        return folder

    def digits(self, labels_text, n_per_label, seed, weights):
        """The grid (one row per label) and the arrays generate --out and --npz write: (png, npz, about)."""
        labels_text = field_text(labels_text, "labels")
        n_per_label = whole_number(n_per_label, "number per label", 1, MAX_PER_LABEL)
        seed = whole_number(seed, "seed", 0, MAX_SEED)
        with self.lock:
            source = self.source(weights)
            labels = read_labels(labels_text, source.cfg)
            check_size(labels, n_per_label, "labels")
            images, y = draw_digits(source, labels, n_per_label, seed)
            folder = self.answer_folder()
            png, npz = os.path.join(folder, "digits.png"), os.path.join(folder, "digits.npz")
            # As generate --out and --npz write them.
            save_visualization(images / 255.0, (len(labels), n_per_label), png)
            with atomic_write(npz) as f:
                np.savez(f, images=images, labels=y)
        return png, npz, self.about(source, f"{len(labels)} x {n_per_label} (labels x per label), seed {seed}")

    def walks(self, mode, pairs_text, labels_text, steps, seed, weights):
        """The walks generate --interpolate draws, one row each: (png, about)."""
        if mode not in ("classes", "latent"):
            raise ValueError(f"walk {mode!r}: classes or latent")
        text = field_text(pairs_text if mode == "classes" else labels_text, "pairs" if mode == "classes" else "labels")
        steps = whole_number(steps, "steps", 2, MAX_STEPS)
        seed = whole_number(seed, "seed", 0, MAX_SEED)
        with self.lock:
            source = self.source(weights)
            rows = read_pairs(text, source.cfg) if mode == "classes" else read_labels(text, source.cfg)
            check_size(rows, steps, "pairs" if mode == "classes" else "labels")
            walks = draw_walks(source, mode, rows, steps, seed)
            png = os.path.join(self.answer_folder(), f"{mode}-interpolation.png")
            save_visualization(walks.reshape(-1, *walks.shape[2:]) / 255.0, walks.shape[:2], png)
        return png, self.about(source, f"{mode} walks, {len(rows)} x {steps} (rows x steps), seed {seed}")

    def about(self, source, answer=None):
        """What the generator is, in Markdown; with the answer drawn, if any."""
        cfg = source.cfg
        where = "the pretrained generator" if self.args.pretrained else f"`{source.path}`"
        lines = [f"**Drawn:** {answer}, from {where} ({WEIGHT_CHOICES[source.drawn]})."] if answer else []
        if self.args.pretrained:
            lines.append(pretrained_about())
        else:
            iteration = os.path.basename(source.path).rpartition("-")[2]
            lines.append(f"**Run** in `{self.folder}`: checkpoint `{os.path.basename(source.path)}` (iteration "
                         f"{iteration}), weights: {', '.join(WEIGHT_CHOICES[w] for w in self.sources)}.")
            lines.append(f"**Data:** {data_about(cfg)} (fingerprint {source.fingerprint}).")
            if self.follows:
                lines.append("Follows the folder: a newer checkpoint is drawn from at the next request.")
            if self.unreadable:
                lines.append(f"**Not drawn from:** {self.unreadable[1]}")
        lines.append(f"**Classes** (labels, one row each): {' '.join(class_names(cfg))}. Images "
                     f"{' x '.join(map(str, cfg.image_shape()))}; noise: {cfg.dim_z} numbers from U(-1, 1).")
        return "\n\n".join(lines)


def pretrained_about():
    with open(os.path.join(checkpoint.PRETRAINED_DIR, checkpoint.PRETRAINED_RECORD)) as f:
        record = json.load(f)
    cfg = Config.from_json(json.dumps(record["config"]))
    text = (f"**The generator shipped with dcgan-mnist** (`dcgan_mnist/pretrained/`): made from "
            f"`{record['made_from']}`, trained on {data_about(cfg)}.")
    measured = record.get("evaluate", {})
    if "generated" in measured:
        g, r = measured["generated"], measured["real"]
        text += (f" Measured by `{measured['command']}`: label agreement {g['label_agreement']:.1%}, classifier "
                 f"score {g['classifier_score']:.2f}, Frechet distance {g['frechet_distance']:.1f} (real digits: "
                 f"{r['label_agreement']:.1%}, {r['classifier_score']:.2f}, {r['frechet_distance']:.1f}).")
    return text


def data_about(cfg):
    if cfg.image_folder:
        return f"the images in `{cfg.image_folder}`"
    if cfg.train_images:
        return f"`{cfg.train_images}` with `{cfg.train_labels}`"
    return {"mnist_test": data.SHIPPED_SOURCE, "fashion_mnist": "Fashion-MNIST"}.get(
        cfg.dataset, f"MNIST (--data-dir `{cfg.data_dir}`)")


# ---------------------------------------------------------------- the page

def import_gradio():
    # Before the import: Gradio sends usage data and checks for a newer version at launch unless told not to.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise UserError("the demo page needs Gradio, the demo extra: pip install -e '.[demo]'") from None
    return gradio


def shown_by(gr):
    """A wrapper of page handlers: their ValueError (refused input) as Gradio's error box on the page,
    escaped (the box shows HTML), without a traceback in the terminal."""
    def shown(method):
        def handler(*inputs):
            try:
                return method(*inputs)
            except ValueError as e:
                raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None
        return handler
    return shown


def build_page(gr, demo):
    shown = shown_by(gr)

    def digits(*inputs):
        png, npz, about = demo.digits(*inputs)
        return png, gr.DownloadButton(value=png, visible=True), gr.DownloadButton(value=npz, visible=True), about

    def walks(*inputs):
        png, about = demo.walks(*inputs)
        return png, gr.DownloadButton(value=png, visible=True), gr.DownloadButton(value=None, visible=False), about

    first = next(iter(demo.sources.values()))
    names = class_names(first.cfg)
    with gr.Blocks(title="dcgan-mnist", delete_cache=(3600, 3600)) as page:
        gr.Markdown("## dcgan-mnist: the generator in the browser\nWhat `python -m dcgan_mnist.generate` draws, "
                    "one row per label.")
        with gr.Row():
            with gr.Column(scale=1):
                labels = gr.Textbox(default_labels(first.cfg), label="Labels", elem_id="labels", max_length=MAX_TEXT,
                                    info=f"as generate --labels takes them, one row each; classes: {' '.join(names)}")
                n_per_label = gr.Number(10, precision=0, label=f"Number per label (1 to {MAX_PER_LABEL})",
                                        elem_id="n-per-label")
                with gr.Row(equal_height=True):
                    seed = gr.Number(0, precision=0, label="Seed", elem_id="seed", scale=2)
                    new_seed = gr.Button("New seed", elem_id="new-seed", scale=1)
                weights = gr.Radio(list(demo.sources), value=first.drawn, label="Weights", elem_id="weights",
                                   visible=len(demo.sources) > 1)
                go = gr.Button("Generate", variant="primary", elem_id="generate")
                with gr.Accordion("Walks", open=False, elem_id="walks"):
                    mode = gr.Radio(["classes", "latent"], value="classes", label="Walk", elem_id="walk-mode",
                                    info="classes: one noise vector, from one label to another; latent: one "
                                         "label (the rows of Labels), between two noise draws")
                    pairs = gr.Textbox(default_pairs(first.cfg), label="Pairs (classes)", elem_id="pairs",
                                       max_length=MAX_TEXT, info="as generate --pairs takes them: 38, 07,18, FROM:TO")
                    steps = gr.Number(10, precision=0, label=f"Steps (2 to {MAX_STEPS})", elem_id="steps")
                    walk = gr.Button("Walk", elem_id="walk")
            with gr.Column(scale=2):
                image = gr.Image(type="filepath", format="png", label="Digits", show_label=False, elem_id="digits",
                                 interactive=False, buttons=["fullscreen"])
                with gr.Row():
                    png = gr.DownloadButton("PNG", elem_id="download-png", visible=False)
                    npz = gr.DownloadButton("npz", elem_id="download-npz", visible=False)
                about = gr.Markdown(demo.about(first), elem_id="about")
        # preprocess=False: the inputs reach Demo's checks as sent, whose refusals the page shows (Gradio's own
        # checks of a Number or a Radio answer a bare "Error" and print a traceback).
        asked, outputs = [labels, n_per_label, seed, weights], [image, png, npz, about]
        go.click(shown(digits), asked, outputs, api_name="generate", preprocess=False)
        labels.submit(shown(digits), asked, outputs, api_visibility="private", preprocess=False)
        new_seed.click(lambda: random.randint(0, MAX_SEED), None, seed, api_visibility="private").then(
            shown(digits), asked, outputs, api_visibility="private", preprocess=False)
        walk.click(shown(walks), [mode, pairs, labels, steps, seed, weights], outputs, api_name="walk",
                   preprocess=False)
    return page.queue(max_size=MAX_WAITING)


# The grid fills its box (Gradio's .image-frame), each pixel a sharp square: a 28 x 28 cell is small on a screen.
CSS = ("#digits .image-frame { width: 100%; } "
       "#digits img { image-rendering: pixelated; width: 100%; height: auto; max-height: 60vh; object-fit: contain; }")


def parser():
    p = OneLineErrorParser(prog="python -m dcgan_mnist.demo", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(p)
    p.add_argument("--port", type=int, help="port to serve on (default: the first free one from 7860)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this "
                                                       "machine only; the page has no login: 0.0.0.0 serves it "
                                                       "to anyone who reaches this machine)")
    add_verbose(p)
    return p


def check_address(p, host, port):
    """Refuse at once an address this machine cannot listen on (Gradio would try it on a hundred ports)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            s.bind(address)
    except OSError as e:
        flag = f"--port {port}" if e.errno == errno.EADDRINUSE else f"--host {host}"
        p.error(f"{flag}: cannot listen on {host} port {port or 'any'} ({e.strerror or e})")


def command(p, args):
    if args.port is not None and not 1 <= args.port <= 65535:
        p.error(f"--port {args.port}: must be 1 to 65535")
    check_address(p, args.host, args.port)
    workdir = tempfile.mkdtemp(prefix="dcgan-mnist-demo-")
    try:
        demo = Demo(args, workdir)
        os.environ["GRADIO_TEMP_DIR"] = os.path.join(workdir, "gradio")  # Gradio's files too, removed at the end
        gr = import_gradio()
        page = build_page(gr, demo)
        # Gradio's default theme with the system's fonts: no font file is fetched, from anywhere.
        theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
        try:
            _, url, _ = page.launch(server_name=args.host, server_port=args.port, share=False, quiet=not args.verbose,
                                    prevent_thread_lock=True, footer_links=["api"], ssr_mode=False, mcp_server=False,
                                    enable_monitoring=False, theme=theme, css=CSS)
        except OSError:  # taken since check_address, or every port from 7860 to 7959 taken
            raise UserError(f"--port {args.port}: in use" if args.port else "no free port from 7860 to 7959: "
                            "pass --port N") from None
        what = "the pretrained generator" if args.pretrained else demo.path + (
            f" (and the newer checkpoints of {demo.folder})" if demo.follows else "")
        print(f"serving {what} at {url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass  # the server's threads end with the process (Gradio's close waits for open connections)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None):
    p = parser()
    return run(p, argv, lambda args: command(p, args))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # as Ctrl-C: command's work folder is removed
    sys.exit(main())
