"""The demo page (dcgan_mnist/demo.py) as users run it: one server for the module (`python -m dcgan_mnist.demo
--pretrained`, on the first free port from 7860), driven by a real headless Chromium (one session for every
browser check) and by Gradio's own client, and its digits read by the package's classifier. The
checkpoint-following and the flags are checked in this process, without a server.

DCGAN_MNIST_SCREENSHOT=docs/demo.png python -m pytest -n 0 tests/test_demo.py remakes the README's screenshot.
"""
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import ROOT, call_main
from dcgan_mnist import checkpoint, classifier, demo, generate

# One module fixture (the server) is shared: every test of this file runs on one xdist worker, with
# test_evaluate.py's, whose real-digit run (conftest.mnist_run) gives the classifier that reads the page.
pytestmark = pytest.mark.xdist_group("mnist_run")

WAIT = 60  # seconds any one thing on the page may take before the test fails (a hung server, not a slow one)


# ---------------------------------------------------------------- the server, the reader, the browser

@pytest.fixture(scope="module")
def served(tmp_path_factory, request):
    """The demo serving the pretrained generator as a real process; conftest.mnist_run's classifier, 1,000
    shipped digits, 100 steps (it reads the digits the page draws: 97.8% of the pretrained generator's
    as asked, at worst 96% of a seed's 200, docs/measurements.md); the generator in this process, for
    references."""
    folder = tmp_path_factory.mktemp("demo")
    out, err = folder / "stdout", folder / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:  # no --port: the first free one from 7860
        proc = subprocess.Popen([sys.executable, "-m", "dcgan_mnist.demo", "--pretrained"], cwd=folder,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=stdout, stderr=stderr)
    try:
        # Made while the server starts, if no test of the group has made it yet.
        reader = request.getfixturevalue("mnist_run")["evaluator"].classifier
        deadline = time.monotonic() + 120  # TensorFlow's and Gradio's start-up on a loaded machine
        while not out.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        line = re.fullmatch(r"serving the pretrained generator at http://127\.0\.0\.1:(\d+)/ \(Ctrl-C stops\)\n",
                            out.read_text())
        assert line, (out.read_text(), err.read_text())
        port = int(line.group(1))
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", port=port, stderr=err, reader=reader,
                              source=checkpoint.load_pretrained())
    finally:
        proc.terminate()  # SIGTERM: as Ctrl-C
        proc.wait(timeout=30)
    assert proc.returncode == 0, err.read_text()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium (Debian's chromium and chromium-driver) logging every request it sends."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no Chromium: apt-get install chromium chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # and the driver's path below: Selenium downloads neither
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def wait(browser, condition, why=lambda: ""):
    """condition()'s first true value, polled (again when an element it read was replaced meanwhile, as the
    page redraws); TimeoutException after WAIT seconds, with why()."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(browser, WAIT, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
                             ).until(lambda _: condition())
    except TimeoutException:
        raise TimeoutException(why()) from None


def find(browser, selector):
    from selenium.webdriver.common.by import By
    return browser.find_elements(By.CSS_SELECTOR, selector)


def fill(browser, selector, value):
    """Type value over what the field holds, as a user does (Selenium's clear() sends Gradio no input event)."""
    from selenium.webdriver.common.keys import Keys
    box = find(browser, selector)[0]
    box.send_keys(Keys.CONTROL, "a")  # a call's modifier is held to its end: the text goes in a call of its own
    box.send_keys(Keys.BACKSPACE, str(value))


def ask(browser, labels, n_per_label=None, seed=None):
    """Type a request other than the one shown, press `generate`; returns the src of the image drawn in answer."""
    before = wait(browser, lambda: [image_src(browser)])[0]
    fill(browser, "#labels textarea", labels)
    if n_per_label is not None:
        fill(browser, "#n-per-label input", n_per_label)
    if seed is not None:
        fill(browser, "#seed input", seed)
    find(browser, "#generate")[0].click()
    return wait(browser, lambda: (src := image_src(browser)) not in (None, before) and src)


def refused(browser, labels, n_per_label, message):
    """Type a bad request and press `generate`: the page shows `message` in an error box."""
    fill(browser, "#labels textarea", labels)
    fill(browser, "#n-per-label input", n_per_label)
    find(browser, "#generate")[0].click()
    seen = set()  # every error box shown meanwhile (each goes after 10 s)

    def shown():
        seen.update(e.text for e in find(browser, ".toast-body.error"))
        return any(message in text for text in seen)
    wait(browser, shown, lambda: f"error boxes shown: {seen}")


def image_src(browser):
    images = find(browser, "#digits img")
    return images[0].get_attribute("src") if images else None


def fetch(url):
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        return response.read()


def cells(png_bytes):
    """The grid's cells, uint8 [rows, columns, 28, 28], from a grey grid's PNG."""
    grid = np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB"))
    assert (grid == grid[..., :1]).all()  # grey: three equal channels
    rows, columns = grid.shape[0] // 28, grid.shape[1] // 28
    assert grid.shape[:2] == (rows * 28, columns * 28)
    return grid[..., 0].reshape(rows, 28, columns, 28).transpose(0, 2, 1, 3)


# ---------------------------------------------------------------- in the browser

def test_the_page_draws_the_digits_typed_one_row_each(served, browser):
    browser.get(served.url)
    wait(browser, lambda: find(browser, "#labels textarea"))
    src = ask(browser, "2026", n_per_label=4, seed=7)
    drawn = cells(fetch(src))
    assert drawn.shape == (4, 4, 28, 28)
    _, probs = classifier.features_and_probs(served.reader, drawn.reshape(-1, 28, 28))
    read = probs.argmax(axis=1).reshape(4, 4)
    for row, digit in zip(read, [2, 0, 2, 6]):
        assert np.sum(row == digit) >= 3, read  # the pretrained generator: 99% read as asked
    wait(browser, lambda: "Drawn: 4 x 4 (labels x per label), seed 7" in find(browser, "#about")[0].text)
    wait(browser, lambda: all(find(browser, f"#download-{name}")[0].is_displayed() for name in ("png", "npz")))
    if os.environ.get("DCGAN_MNIST_SCREENSHOT"):
        browser.save_screenshot(os.environ["DCGAN_MNIST_SCREENSHOT"])


def test_bad_requests_are_shown_on_the_page_and_the_next_one_is_drawn(served, browser):
    browser.get(served.url)
    wait(browser, lambda: find(browser, "#labels textarea"))
    refused(browser, "20x6", 4, "--labels '20x6': no label '20x6'")
    refused(browser, "", 4, "labels: empty")
    refused(browser, "7", 51, "number per label 51: give a whole number from 1 to 50")
    refused(browser, "00112233445", 50, "11 rows x 50 = 550 images: at most 500")
    drawn = cells(fetch(ask(browser, "7", n_per_label=3)))
    assert drawn.shape == (1, 3, 28, 28)
    _, probs = classifier.features_and_probs(served.reader, drawn[0])
    assert np.sum(probs.argmax(axis=1) == 7) >= 2
    assert served.stderr.read_text() == ""  # no traceback for a refused request


def test_the_page_fetches_nothing_but_from_its_own_server(served, browser):
    """No CDN, no fonts, no analytics: every request Chromium sent for the page and a drawing went to the
    demo's own address (or is inline data)."""
    browser.get_log("performance")  # what earlier tests logged
    browser.get(served.url)
    wait(browser, lambda: find(browser, "#labels textarea"))
    ask(browser, "1", n_per_label=2, seed=3)
    urls = [json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"]
    assert any("/gradio_api/" in url for url in urls)  # the log holds the page's requests
    elsewhere = [url for url in urls if urllib.parse.urlsplit(url).scheme not in ("data", "blob")
                 and urllib.parse.urlsplit(url).netloc != f"127.0.0.1:{served.port}"]
    assert elsewhere == []


# ---------------------------------------------------------------- through the page's HTTP API

@pytest.fixture(scope="module")
def api(served):
    """Gradio's client of the page's HTTP API; answers' files are left on the server (their URLs fetched)."""
    from gradio_client import Client
    return Client(served.url, verbose=False, download_files=False)


def test_twenty_requests_at_once_are_all_answered_with_the_digits_asked_for(served, api):
    """Four requests, each sent five times, all twenty at once: every answer is generate's own digits for its
    request (drawn again in this process), as a grid and as generate --npz's arrays, and the five answers to a
    request are the same."""
    distinct = [("2026", 4, 1), ("0123456789", 10, 2), ("7", 1, 3), ("31", 5, 4)]
    requests = distinct * 5
    jobs = [api.submit(labels, n, seed, "average", api_name="/generate") for labels, n, seed in requests]
    answers = [job.result(timeout=WAIT) for job in jobs]
    grids = [fetch(answer[0]["url"]) for answer in answers]
    for i, (labels, n, seed) in enumerate(distinct):
        got = cells(grids[i])
        assert got.shape == (len(labels), n, 28, 28)
        images, y = generate.generate(served.source.generator, [int(c) for c in labels], n, seed)
        # Another process may sum in another order: a pixel may round one level apart.
        assert np.abs(got.reshape(-1, 28, 28).astype(int) - images).max() <= 1
        assert all(grids[j] == grids[i] for j in range(i, len(requests), len(distinct)))
        assert fetch(answers[i][1]["value"]["url"]) == grids[i]  # the PNG to download
        with np.load(io.BytesIO(fetch(answers[i][2]["value"]["url"]))) as arrays:  # the npz to download
            np.testing.assert_array_equal(arrays["images"], got.reshape(-1, 28, 28))
            np.testing.assert_array_equal(arrays["labels"], y)


def test_walks_are_generates_walks(served, api):
    png = fetch(api.predict("classes", "38", "", 5, 2, "average", api_name="/walk")[0]["url"])
    want = generate.class_interpolation(served.source.generator, [(3, 8)], 5, 2)
    assert np.abs(cells(png).astype(int) - want).max() <= 1
    png = fetch(api.predict("latent", "", "70", 4, 2, "average", api_name="/walk")[0]["url"])
    want = generate.latent_interpolation(served.source.generator, [7, 0], 4, 2)
    assert np.abs(cells(png).astype(int) - want).max() <= 1


@pytest.mark.parametrize("inputs, message", [
    (("7" * (demo.MAX_TEXT + 1), 1, 0, "average"), f"labels: {demo.MAX_TEXT + 1} characters; at most 1000"),
    (("7", 1, -1, "average"), "seed -1: give a whole number from 0 to 4294967295"),
    (("7", "ten", 0, "average"), "number per label 'ten': give a whole number"),
    (("7" * 51, 1, 0, "average"), "51 labels: at most 50 rows"),
    (("7", 1, 0, "trained"), "weights 'trained': this generator has the averaged generator only"),
])
def test_what_the_page_cannot_send_is_refused_through_the_api_too(api, inputs, message):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match=re.escape(message)):
        api.predict(*inputs, api_name="/generate")


def test_the_server_listens_on_127_0_0_1_only(served):
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("reads Linux's /proc/net/tcp")
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in open(table).read().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, port = local.rpartition(":")
                if state == "0A" and int(port, 16) == served.port:  # 0A: LISTEN
                    listening.add(address)
    assert listening == {"0100007F"}  # 127.0.0.1, bytes reversed


# ---------------------------------------------------------------- in this process

def test_a_followed_folder_is_drawn_from_its_newest_checkpoint_that_loads(trained_copy, tmp_path):
    folder = str(trained_copy / "checkpoints")

    def training_wrote(n):  # as the trainer's CheckpointManager records a checkpoint written whole
        tf.compat.v1.train.update_checkpoint_state(folder, f"ckpt-{n}",
                                                   all_model_checkpoint_paths=[f"ckpt-{k}" for k in range(1, n + 1)])

    def reference(n, weights):
        images, _ = generate.generate(checkpoint.restore_generator(folder, f"{folder}/ckpt-{n}", weights).generator,
                                      [0, 1], 2, 5)
        return images

    # ckpt-1 is written after a D step, ckpt-2 after a G step: their digits differ, and tell which drew them.
    assert not np.array_equal(reference(1, "average"), reference(2, "average"))
    training_wrote(1)
    page = demo.Demo(demo.parser().parse_args(["--checkpoint-dir", folder]), str(tmp_path))
    assert set(page.sources) == {"average", "trained"}
    _, npz, about = page.digits("01", 2, 5, "trained")
    np.testing.assert_array_equal(np.load(npz)["images"], reference(1, "trained"))
    assert "checkpoint `ckpt-1` (iteration 1)" in about
    training_wrote(2)
    _, npz, about = page.digits("01", 2, 5, "average")
    np.testing.assert_array_equal(np.load(npz)["images"], reference(2, "average"))
    assert "checkpoint `ckpt-2` (iteration 2)" in about
    # A newer checkpoint that does not read back: the page stays on the last one and says why.
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(f"{folder}/ckpt-3{suffix}", f"{folder}/ckpt-4{suffix}")
    with open(f"{folder}/ckpt-4.data-00000-of-00001", "r+b") as f:
        f.truncate(100)
    training_wrote(4)
    _, npz, about = page.digits("01", 2, 5, "average")
    np.testing.assert_array_equal(np.load(npz)["images"], reference(2, "average"))
    assert "ckpt-2" in about and "Not drawn from:" in about and "ckpt-4: cannot restore checkpoint" in about


def test_a_pinned_checkpoint_is_not_followed(trained_copy, tmp_path):
    folder = str(trained_copy / "checkpoints")
    page = demo.Demo(demo.parser().parse_args(["--checkpoint-dir", folder, "--checkpoint", f"{folder}/ckpt-2"]),
                     str(tmp_path))
    _, _, about = page.digits("3", 1, 0, "average")
    assert page.path.endswith("ckpt-2") and "ckpt-2" in about and "Follows" not in about


@pytest.mark.parametrize("flags, message", [
    (["--pretrained", "--checkpoint-dir", "x"], "error: --pretrained and --checkpoint-dir exclude each other"),
    (["--pretrained", "--weights", "trained"], "error: --weights trained: the pretrained generator is an averaged"),
    (["--checkpoint-dir", "nowhere"], "error: no checkpoint in nowhere: train first"),
    (["--pretrained", "--port", "70000"], "python -m dcgan_mnist.demo: error: --port 70000: must be 1 to 65535"),
    (["--pretrained", "--port", "TAKEN"], "python -m dcgan_mnist.demo: error: --port TAKEN: cannot listen on "
                                          "127.0.0.1 port TAKEN"),  # a port in use
    (["--pretrained", "--host", "192.0.2.1"], "python -m dcgan_mnist.demo: error: --host 192.0.2.1: cannot listen on "
                                              "192.0.2.1 port any"),  # an address for documentation: not this one
])
def test_bad_flags_stop_with_one_line_and_status_2(flags, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        code, out, err = call_main(capsys, demo.main, *[port if flag == "TAKEN" else flag for flag in flags])
    assert code == 2 and err.startswith(message.replace("TAKEN", port)) and err.count("\n") == 1 and out == ""


def test_without_the_demo_extra_it_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as where Gradio is not installed
    for name in ("GRADIO_ANALYTICS_ENABLED", "GRADIO_TEMP_DIR"):  # the command sets them: undone after the test
        monkeypatch.setenv(name, "")
    code, out, err = call_main(capsys, demo.main, "--pretrained")
    assert code == 2 and err == "error: the demo page needs Gradio, the demo extra: pip install -e '.[demo]'\n"
