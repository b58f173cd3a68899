"""The speed tool: time the training step, count its FLOPs, time whole runs, profile the step.

    python scripts/benchmark.py step [--cases default,bf16,upstream] [--levers] [--interleave TURNS] [--json]
    python scripts/benchmark.py flops
    python scripts/benchmark.py cli [--rounds 3] [--precisions float32,bf16]
    python scripts/benchmark.py profile [--precision float32|bf16] [--pairs 10] [--top 15]
    python scripts/benchmark.py load [--n 60000] [--rounds 5] [--workers 1,2] [--dir DIR]

step: each case in its own process (so its peak RSS is its own) or, with --interleave, all in one
process taking turns of 4 iterations (fair ratios on a busy machine), after warm-up iterations:
  default    the step a run trains with (dcgan_mnist.train.build at upstream's sizes, its noise,
             its averaged generator) on Fashion-MNIST's batches, the four printed figures read back
             every iteration (--log-every 1)
  bf16       the same with --precision bf16; bf16:CASE runs CASE in bf16
  upstream   upstream's execution of the same network: a tf.compat.v1 graph with placeholders, a
             feed_dict per run, numpy noise, and the second forward pass upstream's train.py makes
             to read the printed figures; with the project's TensorFlow settings (oneDNN on)
and with --levers: thinned (G iterations unprinted, nothing read, as with a large --log-every),
plain (model.py's reference step), xla, unfused_adam (Keras's Adam), no_stack (no stacked D),
no_ema (no averaged generator), moments_bn, transposed_dense, onednn_s2 (each undoes one of
step.py's later changes; undone: all three), onednn_off (TensorFlow's stock oneDNN setting on
CPUs without AVX-512 VNNI/BF16 or AMX) and default@INTRA,INTER (thread settings). Prints
s/iteration over D-and-G pairs (median, min, max; CPU seconds), images/s, GFLOP/s, its share of
the machine's rate on the step's own largest matmuls in its dtype, speed-up over upstream, the
longest wait for an input batch, peak RSS, and the peak RSS of a 100-iteration training run on
Fashion-MNIST's 60,000 images, checkpoint included.

flops: the FLOPs of an iteration (iteration_flops, which every mode uses) and of each layer.

cli: `python -m dcgan_mnist.train` as a user runs it, on Fashion-MNIST's 50,000 training images,
--log-every 1000, twice a round per precision (20 and 220 iterations): the difference over 200
iterations is an iteration's time, start-up, data loading, tracing and the last checkpoint
cancelled out. Prints each round, and for the best round, the fastest long run less the fastest
short run and the median round, the share of the best matmul rate measured between rounds.

profile: TensorFlow's profiler over D-and-G pairs of the step (unprinted G iterations, averaged
generator on, random images), op time summed by kind. Ops run two at a time on 2 cores, so op time
adds up to more than wall time: read the shares. docs/speed.md gives the figures.

load: --image-folder's loading (dcgan_mnist/imagefolder.py) against IDX. Fashion-MNIST's first --n
training images are written (untimed) as a gzipped IDX pair and as PNGs, one subfolder per label, into a
temporary folder (or --dir, kept and reused); then, in this process, data.load_idx_pair of the pair and
imagefolder.load_image_folder of the PNGs (as it loads them, and at each --workers thread count) take
turns for --rounds rounds. Both are read once first, untimed, so every timed read finds its files in the
page cache: the rounds time decoding, not the disk. The first read also checks that the folder gives the
IDX array (in the folder's order: by label, then by index). Prints every round, then each one's median
and range, wall and CPU seconds of this process: a busy machine stretches the wall time, hardly the CPU time.
"""
import argparse
import collections
import contextlib
import copy
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dcgan_mnist.config import IMAGE_SHAPE, N_LABELS, Config  # noqa: E402  (the package first: TensorFlow quiet)

SHORT, LONG = 20, 220  # cli: iterations of the short and the long run
# Upstream's MNIST shape: what a run on MNIST resolves its data-decided sizes to (train.fit_settings).
MNIST = dict(dim_y=N_LABELS, dim_channel=IMAGE_SHAPE[2], image_size=IMAGE_SHAPE[:2])
RSS_ITERATIONS = 100


# ---------------------------------------------------------------- FLOP count

def layer_macs(cfg, fast):
    """Multiply-adds per image of each conv and matmul: ({G layer: macs}, {D layer: macs}). A conv's
    count is output pixels x 25 taps x in x out (a conv-transpose's: input pixels, run backwards).
    fast: step.py's path, whose convs take the labels as per-label maps (a [dim_y] x [pixels x out]
    matmul per image); else upstream's label channels concatenated."""
    z, y, W1, W2, W3, C = cfg.dim_z, cfg.dim_y, cfg.dim_W1, cfg.dim_W2, cfg.dim_W3, cfg.dim_channel
    cy = 0 if fast else y
    g = {"gen_W1": (z + y) * W1, "gen_W2": (W1 + y) * W2 * 49,
         "gen_W3": 49 * 25 * (W2 + cy) * W3, "gen_W4": 196 * 25 * (W3 + cy) * C}
    d = {"discrim_W1": 196 * 25 * (C + cy) * W3, "discrim_W2": 49 * 25 * (W3 + cy) * W2,
         "discrim_W3": (W2 * 49 + y) * W1, "discrim_W4": (W1 + y) * 1}
    if fast:
        g["gen_W3"] += y * 196 * W3
        g["gen_W4"] += y * 784 * C
        d["discrim_W1"] += y * 196 * W3
        d["discrim_W2"] += y * 49 * W2
    return g, d


def iteration_flops(cfg, path="step", printed=True):
    """FLOPs (2 per multiply-add) of one D and one G iteration, forward and backward: {"D": .., "G": ..}.
    path: "step" (step.py), "plain" (model.py's reference) or "upstream" (the reference's layers and
    upstream's second forward pass, without D(real) in its G train op). Forward: G once, D twice.
    A layer's weight gradient costs its forward pass, and so does its input gradient unless nothing
    trainable lies below. printed=False: a G iteration the log skips, which step.py runs without D(real)."""
    g, d = layer_macs(cfg, fast=path == "step")
    G, D = sum(g.values()), sum(d.values())
    forward = G + 2 * D
    d_iter = forward + 2 * (D + (D - d["discrim_W1"]))
    g_iter = forward + D + G + (G - g["gen_W1"])
    if path == "upstream":
        d_iter += forward
        g_iter += forward - D
    if not printed:
        g_iter -= D
    return {"D": 2 * cfg.batch_size * d_iter, "G": 2 * cfg.batch_size * g_iter}


def case_flops(case):
    """FLOPs of one iteration of a case, D and G iterations averaged."""
    name = lever_of(case.partition("@")[0])
    f = iteration_flops(Config(**MNIST), name if name in ("plain", "upstream") else "step", printed=name != "thinned")
    return (f["D"] + f["G"]) / 2


def print_flops(args):
    cfg = Config(**MNIST)
    for name, path, printed in (("plain (model.py, upstream's layers)", "plain", True),
                                ("default (step.py)", "step", True), ("default, G iterations unprinted", "step", False),
                                ("upstream incl. second forward", "upstream", True)):
        f = iteration_flops(cfg, path, printed)
        print(f"{name:36s} D iteration {f['D'] / 1e9:6.2f} GFLOP, G iteration {f['G'] / 1e9:6.2f} GFLOP, "
              f"mean {(f['D'] + f['G']) / 2e9:6.2f}")
    for fast in (False, True):
        g, d = layer_macs(cfg, fast)
        print(("step.py" if fast else "plain") + f" forward MFLOP per batch of {cfg.batch_size}: " +
              ", ".join(f"{k} {2 * cfg.batch_size * v / 1e6:.0f}" for k, v in {**g, **d}.items()))


# ---------------------------------------------------------------- the machine

def cpu_flags():
    """The CPU flags that decide the float32 and bfloat16 rates, as /proc/cpuinfo lists them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return "unknown"
    return " ".join(sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})) or "none of avx2/avx512"


def time_loop(run_iteration, warmup, iterations):
    for i in range(warmup):
        run_iteration(i)
    wall, cpu = [], []
    for i in range(warmup, warmup + iterations):
        t, c = time.perf_counter(), time.process_time()
        run_iteration(i)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def big_matmul_shapes(cfg):
    """(m, k, n) of the step's largest matmuls: gen_W2's and discrim_W3's forward pass and both
    gradients of each (a third of its FLOPs). The rate on these, not on a large square matmul, is
    what the step could reach."""
    shapes = []
    for k_in, n_out in ((cfg.dim_W1 + cfg.dim_y, cfg.dim_W2 * 49), (cfg.dim_W2 * 49 + cfg.dim_y, cfg.dim_W1)):
        shapes += [(cfg.batch_size, k_in, n_out), (cfg.batch_size, n_out, k_in), (k_in, cfg.batch_size, n_out)]
    return shapes


def matmul_rates(repeats=10):
    """{"float32": GFLOP/s, "bf16": GFLOP/s}: the best of `repeats` timings of the big matmuls."""
    import tensorflow as tf
    shapes, rates = big_matmul_shapes(Config(**MNIST)), {}
    for name, dtype in (("float32", tf.float32), ("bf16", tf.bfloat16)):
        pairs = [(tf.cast(tf.random.normal([m, k]), dtype), tf.cast(tf.random.normal([k, n]), dtype))
                 for m, k, n in shapes]
        run = tf.function(lambda pairs=pairs: [tf.matmul(a, b)[0, 0] for a, b in pairs])
        wall, _ = time_loop(lambda i, run=run: [x.numpy() for x in run()], 3, repeats)
        rates[name] = sum(2 * m * k * n for m, k, n in shapes) / min(wall) / 1e9
    return rates


# ---------------------------------------------------------------- step: the cases

def dtype_of(case):
    return "bf16" if case.startswith("bf16") else "float32"


def lever_of(case):
    """What a case changes: `bf16:LEVER` runs LEVER in bf16; any other case is its own."""
    return case.partition(":")[2] or case


def training_data():
    import numpy as np

    from dcgan_mnist import data
    if os.path.isdir(data.DEBIAN_FASHION_DIR):
        d = data.load_folder(data.DEBIAN_FASHION_DIR)
        return d.train_images, d.train_labels
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000)


def step_options(name, model):
    """make_train_steps' extra arguments for a lever case."""
    from dcgan_mnist import step
    return {"plain": dict(forwards=(model.build_model, model.build_model), fused_update=False),
            "xla": dict(jit_compile=True), "unfused_adam": dict(fused_update=False),
            "no_stack": dict(forwards=[lambda Z, Y, x: step.build_model(model, Z, Y, x, stack=False)] * 2),
            }.get(name, {})


def undo(name):
    """[(step.py's function, what replaces it)] of the cases that undo one of step.py's later changes:
    moments_bn (batchnorm as elementwise ops), transposed_dense (autodiff's own matmul gradient, not
    the einsum), onednn_s2 (tf.nn's kernels for gen_W4 and discrim_W1); undone: all three."""
    import tensorflow as tf

    from dcgan_mnist import step

    def conv_transpose(h, W):
        return tf.nn.conv2d_transpose(h, W, [tf.shape(h)[0], 2 * h.shape[1], 2 * h.shape[2], W.shape[2]], 2, "SAME")

    levers = {"moments_bn": [("batchnorm_groups", step.moments_batchnorm)],
              "transposed_dense": [("dense", tf.matmul)],
              "onednn_s2": [("conv_transpose_s2", conv_transpose),
                            ("conv_s2", lambda X, W: tf.nn.conv2d(X, W, strides=2, padding="SAME"))]}
    levers["undone"] = sum(levers.values(), [])
    return levers.get(name, [])


INPUT_WAIT = []  # seconds each iteration waited for its batch (project cases)


def case_project(case):
    """A run's step (train.build) as train.py runs it: batches from data.training_batches."""
    import tensorflow as tf

    from dcgan_mnist import data, step, train
    name = lever_of(case)
    cfg = Config(**MNIST, precision=dtype_of(case), seed=0, **({"ema_decay": 0} if name == "no_ema" else {}))
    make = train.make_train_steps
    with mock.patch.object(train, "make_train_steps", lambda m, *a, **kw: make(m, *a, **kw, **step_options(name, m))):
        _, steps, _, _ = train.build(cfg, tf.distribute.get_strategy())
    thinned = name == "thinned"  # nothing read, no D(real) in G iterations
    d_step, g_step = steps.d_step, steps.g_step_unprinted if thinned else steps.g_step
    trX, trY = training_data()
    batches = iter(data.training_batches(trX, trY, cfg.batch_size, 0, 0).repeat())
    undone = undo(name)

    def run_iteration(i):
        t = time.perf_counter()
        images, labels = next(batches)
        INPUT_WAIT.append(time.perf_counter() - t)
        with contextlib.ExitStack() as stack:  # the step traces on its first call, under the patches
            for attr, replacement in undone:
                stack.enter_context(mock.patch.object(step, attr, replacement))
            out = (d_step, g_step)[i % cfg.k != 0](images, labels)
        if not thinned:
            [float(o) for o in out]  # what the log prints

    return run_iteration


def case_upstream():
    """Upstream's execution for TF2's tf.compat.v1: placeholders, feed_dict, numpy noise and one-hot
    labels, images / 255 per batch, tf.compat.v1.train.AdamOptimizer, and after each train op a
    second run of the costs and probabilities. The network: model.py's plain path, upstream's quirks."""
    import numpy as np
    import tensorflow as tf

    from dcgan_mnist.model import DCGAN
    v1 = tf.compat.v1
    cfg = Config(**MNIST, upstream_quirks=True)
    batch = cfg.batch_size
    trX, trY = training_data()
    eager = DCGAN(**cfg.model_kwargs(), seed=0)
    initial = {v.name.split(":")[0]: v.numpy() for v in eager.trainable_variables}
    graph = tf.Graph()
    with graph.as_default():  # the same network and initial weights, as graph variables
        model = copy.copy(eager)
        for name, value in initial.items():
            setattr(model, name, tf.Variable(value, name=name))
        Z_tf = v1.placeholder(tf.float32, [batch, cfg.dim_z])
        Y_tf = v1.placeholder(tf.float32, [batch, cfg.dim_y])
        image_tf = v1.placeholder(tf.float32, [batch, 28, 28, cfg.dim_channel])
        d_cost, g_cost, p_real, p_gen = model.build_model(Z_tf, Y_tf, image_tf)
        adam = lambda: v1.train.AdamOptimizer(cfg.learning_rate, beta1=cfg.beta1)  # noqa: E731
        train_d = adam().minimize(d_cost, var_list=model.discrim_vars)
        train_g = adam().minimize(g_cost, var_list=model.gen_vars)
        init = v1.global_variables_initializer()
    sess = v1.Session(graph=graph)
    sess.run(init)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(trX))

    def run_iteration(i):
        idx = order[(i * batch) % (len(trX) - batch):][:batch]
        feed = {Z_tf: rng.uniform(-1, 1, size=(batch, cfg.dim_z)), Y_tf: np.eye(cfg.dim_y)[trY[idx]],
                image_tf: trX[idx].reshape(batch, 28, 28, 1).astype(np.float64) / 255.0}
        sess.run(train_d if i % cfg.k == 0 else train_g, feed_dict=feed)
        sess.run([g_cost, d_cost, p_real, p_gen], feed_dict=feed)  # upstream's second pass

    return run_iteration


def make_case(name):
    name = "default" if name == "onednn_off" else name
    return case_upstream() if name == "upstream" else case_project(name)


def set_threads(spec):
    import tensorflow as tf
    if spec:
        intra, inter = (int(x) for x in spec.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def pairs(xs):
    """Seconds per iteration of each D-and-G pair: a median over single iterations would fall between
    the D and the cheaper G cluster and hide a change to either."""
    return [(a + b) / 2 for a, b in zip(xs[0::2], xs[1::2])]


def stats(xs):
    xs = sorted(xs)
    return dict(median=xs[len(xs) // 2], min=xs[0], max=xs[-1])


def run_case(args):
    """One case in this process (the parent's child): one JSON line."""
    import dcgan_mnist  # noqa: F401  (TensorFlow's start-up quiet; oneDNN on unless the parent turned it off)
    set_threads(args.threads)
    if args.run_case == "matmul":
        return print(json.dumps(matmul_rates()))
    wall, cpu = time_loop(make_case(args.run_case), args.warmup, args.iterations)
    wait = INPUT_WAIT[-len(wall):] or None
    print(json.dumps(dict(wall=wall, cpu=cpu, input_wait=wait)))


def interleaved(args):
    """All cases in this one process, timed in turns of 4 iterations: every case sees the same load."""
    import numpy as np

    import dcgan_mnist  # noqa: F401
    set_threads(args.threads)
    runs = {c: make_case(c) for c in args.cases.split(",")}
    wall = {c: [] for c in runs}
    for run in runs.values():
        time_loop(run, args.warmup, 0)
    rates = {"float32": 0.0, "bf16": 0.0}
    for _turn in range(args.interleave):
        for c, run in runs.items():
            wall[c] += time_loop(run, 0, 4)[0]
        rates = {d: max(r, matmul_rates(3)[d]) for d, r in rates.items()}  # the best between turns
    wall = {c: pairs(w) for c, w in wall.items()}
    base = np.median(wall["upstream"]) if "upstream" in wall else None
    print(f"{args.interleave} turns of 4 iterations per case; load average {os.getloadavg()[0]:.2f}; "
          f"s/iteration over each D-and-G pair; CPU flags: {cpu_flags()}")
    print(f"the step's big matmuls, best between turns: float32 {rates['float32']:.0f} GFLOP/s, "
          f"bfloat16 {rates['bf16']:.0f} GFLOP/s")
    for c, w in wall.items():
        up = f", {base / np.median(w):.2f}x upstream" if base else ""
        rate = case_flops(c) / np.median(w) / 1e9
        print(f"{c}: median {np.median(w):.4f} s/iteration (min {min(w):.4f}){up}; {rate:.0f} GFLOP/s, "
              f"{rate / rates[dtype_of(c)]:.0%} of the {dtype_of(c)} matmul rate")


def child(argv, **env):
    """Run argv with env added; (stdout, peak RSS in bytes of that process alone)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, cwd=ROOT, env=dict(os.environ, **env))
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark: {' '.join(argv[1:5])}... failed")
    return text, usage.ru_maxrss * 1024


def train_command(tmp, iterations, *flags):
    """python -m dcgan_mnist.train on Fashion-MNIST (the package's folder or download), in tmp."""
    return [sys.executable, "-m", "dcgan_mnist.train", "--dataset", "fashion_mnist",
            "--data-dir", os.path.join(tmp, "none"), "--max-iterations", str(iterations),
            "--vis-dir", os.path.join(tmp, "vis"), "--checkpoint-dir", os.path.join(tmp, "ckpt"), *flags]


def training_rss():
    """Peak RSS of a training run on Fashion-MNIST's 60,000 training images, a checkpoint included."""
    with tempfile.TemporaryDirectory() as tmp:
        return child(train_command(tmp, RSS_ITERATIONS, "--valid-size", "0", "--log-every", str(RSS_ITERATIONS),
                                   "--step", "1000", "--seed", "0"))[1]


def sequential(args):
    cases = args.cases.split(",")
    if args.levers:
        cases += ["thinned", "plain", "xla", "unfused_adam", "no_stack", "no_ema", "moments_bn", "transposed_dense",
                  "onednn_s2", "undone", "onednn_off", "default@1,1", "default@2,2", "default@2,1"]
    load_before, results = os.getloadavg(), {}
    for case in ["matmul"] + cases:
        name, _, threads = case.partition("@")
        cmd = [sys.executable, os.path.abspath(__file__), "step", "--run-case", name,
               "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
        if threads or args.threads:
            cmd += ["--threads", threads or args.threads]
        # onednn_off: TensorFlow's stock setting, which the package's import must not override.
        text, rss = child(cmd, **({"TF_ENABLE_ONEDNN_OPTS": "0"} if name == "onednn_off" else {}))
        results[case] = dict(json.loads(text.strip().splitlines()[-1]), rss=rss)
        print(f"... {case} done", file=sys.stderr, flush=True)
    rates = results.pop("matmul")
    up = stats(pairs(results["upstream"]["wall"]))["median"] if "upstream" in results else None
    report = dict(load_average_before=load_before, load_average_after=os.getloadavg(), cpu_flags=cpu_flags(),
                  matmul_gflops=rates, peak_rss_training_60k=None if args.no_rss_run else training_rss(),
                  flops_per_iteration={c: case_flops(c) for c in ("default", "plain", "upstream")}, cases={})
    for c, r in results.items():
        w = stats(pairs(r["wall"]))
        gflops = case_flops(c) / w["median"] / 1e9
        report["cases"][c] = dict(
            s_per_iteration=w, cpu_s_per_iteration=stats(pairs(r["cpu"]))["median"],
            images_per_s=Config.batch_size / w["median"], gflops=gflops,
            share_of_matmul=gflops / rates[dtype_of(c.partition("@")[0])],
            speedup_over_upstream=up / w["median"] if up else None,
            input_wait_ms=1e3 * max(r["input_wait"]) if r.get("input_wait") else None, peak_rss=r["rss"])
    if args.json:
        return print(json.dumps(report, indent=2))
    f = report["flops_per_iteration"]
    print(f"batch {Config.batch_size}, {args.iterations} timed iterations after {args.warmup} warm-up, alternating "
          f"D and G; load average {load_before[0]:.2f} before, {report['load_average_after'][0]:.2f} after")
    print(f"CPU flags: {report['cpu_flags']}; the step's big matmuls (best of 10): float32 {rates['float32']:.0f} "
          f"GFLOP/s, bfloat16 {rates['bf16']:.0f} GFLOP/s; FLOP per iteration: default {f['default'] / 1e9:.1f} G, "
          f"plain {f['plain'] / 1e9:.1f} G, upstream {f['upstream'] / 1e9:.1f} G (its second forward pass included)")
    print("| case | s/iteration median (min-max) | CPU s/it | images/s | GFLOP/s | share of its dtype's matmul rate "
          "| speed-up over upstream | input wait, max | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c, r in report["cases"].items():
        w = r["s_per_iteration"]
        up = f"{r['speedup_over_upstream']:.2f}x" if r["speedup_over_upstream"] else "-"
        wait = f"{r['input_wait_ms']:.2f} ms" if r["input_wait_ms"] is not None else "-"
        print(f"| {c} | {w['median']:.4f} ({w['min']:.4f}-{w['max']:.4f}) | {r['cpu_s_per_iteration']:.4f} "
              f"| {r['images_per_s']:.0f} | {r['gflops']:.0f} | {100 * r['share_of_matmul']:.0f}% | {up} | {wait} "
              f"| {r['peak_rss'] / 1e9:.3f} GB |")
    if report["peak_rss_training_60k"]:
        print(f"peak RSS training on 60,000 Fashion-MNIST images ({RSS_ITERATIONS} iterations and a checkpoint): "
              f"{report['peak_rss_training_60k'] / 1e9:.3f} GB (10^9 bytes)")


# ---------------------------------------------------------------- cli: whole runs

def train_seconds(iterations, precision):
    """Wall seconds of one training command in a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run(train_command(tmp, iterations, "--log-every", "1000", "--seed", "1", "--precision", precision),
                       check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
        return time.perf_counter() - t


def cli(args):
    precisions = args.precisions.split(",")
    per_it, walls = {d: [] for d in precisions}, {d: ([], []) for d in precisions}
    rates = {"float32": 0.0, "bf16": 0.0}
    for r in range(args.rounds):
        for d in precisions:
            short, long = train_seconds(SHORT, d), train_seconds(LONG, d)
            per_it[d].append((long - short) / (LONG - SHORT))
            walls[d][0].append(short)
            walls[d][1].append(long)
        text, _ = child([sys.executable, os.path.abspath(__file__), "step", "--run-case", "matmul"])
        measured = json.loads(text.strip().splitlines()[-1])
        rates = {d: max(rates[d], measured[d]) for d in rates}
        print(f"round {r + 1}: s/iteration " + ", ".join(
            f"{d} {per_it[d][-1]:.4f} ({walls[d][0][-1]:.1f} s, {walls[d][1][-1]:.1f} s)" for d in precisions)
            + f"; matmul float32 {measured['float32']:.0f}, bfloat16 {measured['bf16']:.0f} GFLOP/s", flush=True)
    flops = case_flops("thinned")  # --log-every 1000: G iterations unprinted
    print(f"CPU flags: {cpu_flags()}; load average {os.getloadavg()[0]:.2f}; best matmul rates: float32 "
          f"{rates['float32']:.0f}, bfloat16 {rates['bf16']:.0f} GFLOP/s; {flops / 1e9:.2f} GFLOP per iteration")
    # The fastest short and the fastest long run are each unstalled: their difference resists a slow run.
    for d, times in per_it.items():
        robust = (min(walls[d][1]) - min(walls[d][0])) / (LONG - SHORT)
        for name, t in (("best round", min(times)), ("fastest long - fastest short", robust),
                        ("median round", sorted(times)[len(times) // 2])):
            print(f"{d}: {name} {t:.4f} s/iteration; {flops / t / 1e9:.0f} GFLOP/s, "
                  f"{flops / t / 1e9 / rates[d]:.0%} of the {d} matmul rate")


# ---------------------------------------------------------------- profile

KINDS = [  # (kind, substrings of the op type), first match wins
    ("matmul", ("MatMul", "Einsum")), ("conv filter gradient", ("Conv2DBackpropFilter",)),
    ("conv input gradient, conv-transpose", ("Conv2DBackpropInput",)), ("conv", ("Conv2D",)),
    ("batchnorm", ("FusedBatchNorm",)), ("Adam and the average", ("ApplyAdam", "AssignSub", "AssignAdd")),
    ("casts", ("Cast",)),
    ("slices, pads, concats, transposes", ("Slice", "Pad", "Concat", "Transpose", "Split", "DepthToSpace", "Gather")),
    ("leaky ReLU, ReLU", ("Relu",)),
]


def profile(args):
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from dcgan_mnist import train
    cfg = Config(**MNIST, precision=args.precision, seed=0)
    _, steps, _, _ = train.build(cfg, tf.distribute.get_strategy())
    images = tf.random.uniform([cfg.batch_size, 28, 28, cfg.dim_channel])
    labels = tf.random.uniform([cfg.batch_size], 0, cfg.dim_y, dtype=tf.int32)

    def pair():
        steps.d_step(images, labels)
        float(steps.g_step_unprinted(images, labels)[1])

    for _ in range(3):
        pair()
    times = collections.Counter()  # {op type: picoseconds} over TensorFlow's compute threads
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        t = time.perf_counter()
        for _ in range(args.pairs):
            pair()
        wall = time.perf_counter() - t
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events if line.name.startswith("tf_Compute") else ():
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and name.rpartition(":")[2] != "Process":  # "op name:op type"
                    times[name.rpartition(":")[2]] += event.duration_ps
    total, kinds = sum(times.values()), collections.Counter()
    for op, ps in times.items():
        kinds[next((k for k, keys in KINDS if any(key in op for key in keys)), "other elementwise")] += ps
    print(f"{args.precision}: {args.pairs} D-and-G pairs, {wall / args.pairs / 2:.4f} s/iteration under the profiler; "
          f"op time {total / 1e12 / wall:.2f} x wall time (ops overlap)")
    for kind, ps in kinds.most_common():
        print(f"  {ps / total:6.1%}  {kind}")
    print("op types:")
    for op, ps in times.most_common(args.top):
        print(f"  {ps / total:6.1%}  {op}")


# ---------------------------------------------------------------- load: an image folder against IDX

def write_load_data(folder, n):
    """Fashion-MNIST's first n training images into folder, unless already there: a gzipped IDX pair (as
    Debian's) and png/LABEL/INDEX.png. Returns (images, labels)."""
    import gzip

    import numpy as np
    from PIL import Image

    from dcgan_mnist import data
    images, labels = data.load_idx_pair(*(os.path.join(data.DEBIAN_FASHION_DIR, f + ".gz") for f in data.TRAIN_FILES))
    images, labels = images[:n], labels[:n]
    done = os.path.join(folder, f"written-{n}")
    if os.path.exists(done):
        return images, labels
    print(f"writing {n:,} images as IDX and PNG into {folder} (untimed)", file=sys.stderr, flush=True)
    for name, array in zip(data.TRAIN_FILES, (images, labels)):
        header = bytes([0, 0, data.IDX_UBYTE, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        with open(os.path.join(folder, name + ".gz"), "wb") as f:
            f.write(gzip.compress(header + array.astype(np.uint8).tobytes()))
    for label in np.unique(labels):
        os.makedirs(os.path.join(folder, "png", str(label)), exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(os.path.join(folder, "png", str(label), f"{i:05d}.png"))
    open(done, "w").close()
    return images, labels


def load(args):
    import numpy as np

    from dcgan_mnist import data, imagefolder
    with contextlib.ExitStack() as stack:
        folder = args.dir or stack.enter_context(tempfile.TemporaryDirectory())
        os.makedirs(folder, exist_ok=True)
        images, labels = write_load_data(folder, args.n)
        idx, png = [os.path.join(folder, f + ".gz") for f in data.TRAIN_FILES], os.path.join(folder, "png")

        def load_png(workers):  # on `workers` threads, whatever the images' size
            with mock.patch.object(imagefolder, "IMAGE_WORKERS", workers), \
                    mock.patch.object(imagefolder, "PARALLEL_PIXELS", 0):
                return imagefolder.load_image_folder(png)

        cases = {"IDX": lambda: data.load_idx_pair(*idx)}
        cases["PNG as loaded"] = lambda: imagefolder.load_image_folder(png)  # the module's own choice of threads
        for w in [int(w) for w in args.workers.split(",")] if args.workers else []:
            cases[f"PNG {w} thread{'s' * (w > 1)}"] = lambda w=w: load_png(w)
        order = np.argsort(labels, kind="stable")  # the folder's: by label (class "0" to "9"), then by index
        for name, run in cases.items():  # untimed: warms the page cache, and checks what each gives
            got = run()
            if name != "IDX" and not (np.array_equal(got.images, images[order]) and
                                      np.array_equal(got.labels, labels[order])):
                raise SystemExit(f"benchmark: {name}: the folder's array differs from the IDX pair's")
        times = {name: [] for name in cases}
        for r in range(args.rounds):
            for name, run in cases.items():
                t, c = time.perf_counter(), time.process_time()
                run()
                times[name].append((time.perf_counter() - t, time.process_time() - c))
            print(f"round {r + 1}: " + ", ".join(f"{name} {w[-1][0]:.2f} s (CPU {w[-1][1]:.2f} s)"
                                                  for name, w in times.items()), flush=True)
    print(f"{args.n:,} Fashion-MNIST images, 28 x 28 grey ({images.nbytes / 1e6:.0f} MB decoded), page cache warm, "
          f"{args.rounds} rounds in turns; the folder's array equals the IDX array; CPU flags: {cpu_flags()}; "
          f"{len(os.sched_getaffinity(0))} cores; load average {os.getloadavg()[0]:.2f}")
    base = np.median([w for w, _ in times["IDX"]])
    for name, t in times.items():
        wall, cpu = stats([w for w, _ in t]), np.median([c for _, c in t])
        print(f"{name}: median {wall['median']:.2f} s (min {wall['min']:.2f}, max {wall['max']:.2f}), CPU "
              f"{cpu:.2f} s" + (f"; {wall['median'] - base:+.2f} s against IDX" if name != "IDX" else ""))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python scripts/benchmark.py", description=__doc__.splitlines()[0])
    modes = p.add_subparsers(dest="mode", required=True)
    s = modes.add_parser("step", help="time the training step, case by case")
    s.add_argument("--iterations", type=int, default=40, help="timed iterations per case (default: %(default)s)")
    s.add_argument("--warmup", type=int, default=6, help="untimed iterations first (default: %(default)s)")
    s.add_argument("--cases", default="default,bf16,upstream", help="comma-separated (default: %(default)s)")
    s.add_argument("--levers", action="store_true", help="also time every lever case")
    s.add_argument("--threads", help="intra,inter op threads for every case, e.g. 2,1 (default: TensorFlow's)")
    s.add_argument("--no-rss-run", action="store_true", help="skip the 60,000-image training run")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    s.add_argument("--interleave", type=int, metavar="TURNS", help="run --cases in one process, in turns")
    s.add_argument("--run-case", help=argparse.SUPPRESS)
    modes.add_parser("flops", help="the FLOP count of an iteration and of each layer")
    c = modes.add_parser("cli", help="time python -m dcgan_mnist.train, 20 against 220 iterations")
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--precisions", default="float32,bf16")
    f = modes.add_parser("profile", help="op time by kind under TensorFlow's profiler")
    f.add_argument("--precision", default="float32", choices=("float32", "bf16"))
    f.add_argument("--pairs", type=int, default=10)
    f.add_argument("--top", type=int, default=15, help="op types listed (default: %(default)s)")
    ld = modes.add_parser("load", help="time an image folder's loading against IDX")
    ld.add_argument("--n", type=int, default=60000, help="images (default: %(default)s)")
    ld.add_argument("--rounds", type=int, default=5)
    ld.add_argument("--workers", help="also time these thread counts, comma-separated, whatever the images' size")
    ld.add_argument("--dir", help="write the images here, and keep them for the next time (default: a temporary "
                    "folder)")
    args = p.parse_args(argv)
    if args.mode == "step" and (args.warmup % 2 or args.iterations % 2):
        p.error("--warmup and --iterations must be even: iterations alternate D and G, timed in pairs")
    if args.mode == "step":
        return run_case(args) if args.run_case else interleaved(args) if args.interleave else sequential(args)
    return {"flops": print_flops, "cli": cli, "profile": profile, "load": load}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
