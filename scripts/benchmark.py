"""Time the training step: `python scripts/benchmark.py [--iterations N] [--json]`.

Measures, each case in its own process (so peak RSS is its own), after warm-up iterations:
  default         the project's step (dcgan_mnist/step.py, float32), as train.py runs it with
                  the default --log-every 1: the four printed figures read every iteration
  bf16            the same with --precision bf16
  upstream        an upstream-style execution of the same network: a tf.compat.v1 graph with
                  placeholders, a feed_dict per run, numpy noise, and the second forward pass
                  per iteration that upstream's train.py makes to read the printed figures;
                  with the project's TensorFlow settings (oneDNN on)
  upstream_stock  the same under TensorFlow's stock settings for this CPU (oneDNN off unless
                  the CPU has AVX-512 VNNI/BF16 or AMX): upstream as its own users run it here
and, with --levers, the levers measured for docs/speed.md (thinned log, plain
model.build_model step, whole-step XLA, Keras's unfused Adam, no stacked D, no averaged
generator, oneDNN off, thread settings), and cases that undo one of step.py's later changes
(moments_bn, transposed_dense, onednn_s2, undone; `bf16:CASE` runs one in bf16). Every project case but
no_ema keeps the averaged generator, as train.py does by default. Also the machine's float32 and
bfloat16 rates on the step's own largest matmuls (big_matmul_shapes), with the CPU flags that decide them, and the
peak RSS of a 100-iteration training run on 60,000 images (Fashion-MNIST's training set), checkpoint included.

Prints s/iteration (wall clock over D-and-G pairs: median, min, max; and CPU seconds), images/s, GFLOP/s from the
counted FLOPs (`--flops` prints the count), its share of its dtype's matmul rate, speed-up over upstream
(and over upstream_stock), the longest wait for an input batch, peak RSS (10^9 bytes).
Iterations alternate D and G as in training.
"""
import argparse
import contextlib
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FASHION = "/usr/share/datasets/fashion-mnist"


# ---------------------------------------------------------------- FLOP count

def layers(dim_z=100, dim_y=10, dim_W1=1024, dim_W2=128, dim_W3=64, C=1, fast=True):
    """Multiply-adds per image of each conv/matmul: {name: (macs, has_weights_first)}.
    A conv's count is output pixels x 25 taps x in x out (a conv-transpose's: input pixels x 25
    x in x out, the same work run backwards). fast=True: step.py's path, where the label
    channels of the convs are per-label maps (10 one-hot images per step, negligible per image,
    plus a [10] x [pixels x out] matmul per image); fast=False: upstream's concatenated labels."""
    y = 0 if fast else dim_y
    g = {"gen_W1": (dim_z + dim_y) * dim_W1,
         "gen_W2": (dim_W1 + dim_y) * dim_W2 * 49,
         "gen_W3": 49 * 25 * (dim_W2 + y) * dim_W3,
         "gen_W4": 196 * 25 * (dim_W3 + y) * C}
    d = {"discrim_W1": 196 * 25 * (C + y) * dim_W3,
         "discrim_W2": 49 * 25 * (dim_W3 + y) * dim_W2,
         "discrim_W3": (dim_W2 * 49 + dim_y) * dim_W1,
         "discrim_W4": (dim_W1 + dim_y) * 1}
    if fast:  # Y @ label maps: dim_y multiply-adds per output element
        g["gen_W3"] += dim_y * 196 * dim_W3
        g["gen_W4"] += dim_y * 784 * C
        d["discrim_W1"] += dim_y * 196 * dim_W3
        d["discrim_W2"] += dim_y * 49 * dim_W2
    return g, d


def iteration_flops(batch=128, fast=True, second_forward=False, printed=True, **dims):
    """FLOPs (2 per multiply-add) of one D and one G iteration, forward + backward.
    Forward: G once, D twice (real and generated; the printed d_cost needs both in G steps too).
    Backward of a layer = weight gradient (same work as its forward, when its weights train)
    + input gradient (same again, unless nothing trainable lies below it).
    D iteration: D's weight gradients on both calls, input gradients for D layers 2-4.
    G iteration: input gradients through all of D on the generated call, G's weight gradients,
    input gradients for G layers 2-4. second_forward: upstream's execution, whose G train op
    needs no D(real) and which then runs the whole forward again for the printout.
    printed=False: a G iteration the log skips, which step.py runs without D(real)."""
    g, d = layers(fast=fast, **dims)
    G, D = sum(g.values()), sum(d.values())
    first_d, first_g = d["discrim_W1"], g["gen_W1"]
    forward = G + 2 * D
    d_iter = forward + 2 * (D + (D - first_d))
    g_iter = forward + D + G + (G - first_g)
    if second_forward:
        d_iter += forward
        g_iter += forward - D
    if not printed:
        g_iter -= D
    return {"D": 2 * batch * d_iter, "G": 2 * batch * g_iter}


def case_flops(case, batch=128):
    """FLOPs of one iteration of a benchmark case, D and G iterations averaged."""
    name = lever_of(case.partition("@")[0])
    f = iteration_flops(batch, fast=name != "plain" and not name.startswith("upstream"),
                        second_forward=name.startswith("upstream"), printed=name != "thinned")
    return (f["D"] + f["G"]) / 2


def print_flops():
    for name, kw in (("plain (upstream's layers)", dict(fast=False)),
                     ("default (step.py)", dict(fast=True)),
                     ("default, G iterations unprinted", dict(fast=True, printed=False)),
                     ("upstream incl. second forward", dict(fast=False, second_forward=True))):
        f = iteration_flops(**kw)
        print(f"{name:32s} D iteration {f['D'] / 1e9:6.2f} GFLOP, G iteration {f['G'] / 1e9:6.2f} GFLOP, "
              f"mean {(f['D'] + f['G']) / 2e9:6.2f}")
    for fast in (False, True):
        g, d = layers(fast=fast)
        print(("default" if fast else "plain") + " forward MFLOP per batch of 128: " +
              ", ".join(f"{k} {2 * 128 * v / 1e6:.0f}" for k, v in {**g, **d}.items()))


# ---------------------------------------------------------------- one case, in its own process

def training_data():
    import numpy as np

    from dcgan_mnist import data
    if os.path.isdir(FASHION):
        d = data.load_folder(FASHION)
        return d.train_images, d.train_labels
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000)


def set_threads(spec):
    import tensorflow as tf
    if spec:
        intra, inter = (int(x) for x in spec.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)


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


INPUT_WAIT = []  # seconds each iteration waited for its batch (project cases)


def case_project(name, batch):
    """The project's step as train.py runs it: batches from data.training_batches, the four
    printed figures read back every iteration (--log-every 1)."""
    import tensorflow as tf

    from dcgan_mnist import data, step
    from dcgan_mnist.config import Config
    from dcgan_mnist.model import DCGAN
    cfg = Config(batch_size=batch, precision=dtype_of(name))
    name = lever_of(name)
    model = DCGAN(**cfg.model_kwargs(), seed=0)
    opts = step.adam_optimizers(cfg.learning_rate, cfg.beta1, model.discrim_vars, model.gen_vars)
    noise_rng = tf.random.Generator.from_seed(0)
    kw = {}
    if name == "plain":
        kw = dict(forwards=(model.build_model, model.build_model), fused_update=False)
    elif name == "xla":
        kw = dict(jit_compile=True)
    elif name == "unfused_adam":
        kw = dict(fused_update=False)
    elif name == "no_stack":
        kw = dict(forwards=[lambda Z, Y, x: step.build_model(model, Z, Y, x, stack=False)] * 2)
    if name != "no_ema":  # train.py keeps the averaged generator by default (--ema-decay)
        kw["ema"] = step.moving_average(cfg.ema_decay, model.gen_vars, opts[1])
    d_step, g_step, g_step_unprinted = step.make_train_steps(model, *opts, noise_rng, cfg.precision, **kw)
    thinned = name == "thinned"  # as with a large --log-every: nothing read, no D(real) in G iterations
    if thinned:
        g_step = g_step_unprinted
    trX, trY = training_data()
    batches = iter(data.training_batches(trX, trY, batch, 0, 0).repeat())
    undone = undo(name)

    def run_iteration(i):
        t = time.perf_counter()
        images, labels = next(batches)
        INPUT_WAIT.append(time.perf_counter() - t)  # > 0 only if the pipeline starves the step
        with contextlib.ExitStack() as stack:  # the step traces on its first call, under the patches
            for attr, replacement in undone:
                stack.enter_context(mock.patch.object(step, attr, replacement))
            out = (d_step, g_step)[i % cfg.k != 0](images, labels)
        if not thinned:
            [float(o) for o in out]  # what the log prints

    return run_iteration


def undo(name):
    """[(step.py's function, what replaces it)] for the cases that undo one of step.py's later changes:
    moments_bn (batchnorm as elementwise ops, not the fused kernel), transposed_dense (autodiff's
    own matmul gradient, not the einsum) and onednn_s2 (tf.nn's kernels for gen_W4 and discrim_W1);
    undone: all three."""
    import tensorflow as tf

    from dcgan_mnist import step

    def conv_transpose(h, W):
        return tf.nn.conv2d_transpose(h, W, [tf.shape(h)[0], 2 * h.shape[1], 2 * h.shape[2], W.shape[2]], 2, "SAME")

    levers = {"moments_bn": [("batchnorm_groups", step.moments_batchnorm)],
              "transposed_dense": [("dense", tf.matmul)],
              "onednn_s2": [("conv_transpose_s2", conv_transpose),
                            ("conv_s2", lambda X, W: tf.nn.conv2d(X, W, strides=2, padding="SAME"))]}
    levers["undone"] = sum(levers.values(), [])  # all three: the step as issue 17 found it
    return levers.get(name, [])


def case_upstream(batch):
    """Upstream's execution, written here for TF2's tf.compat.v1: placeholders,
    feed_dict, numpy noise and one-hot labels, images / 255 per batch, Adam via
    tf.compat.v1.train.AdamOptimizer, and after each train op a second run of the costs and
    probabilities. The network is model.py's plain path with upstream's quirks."""
    import numpy as np
    import tensorflow as tf

    from dcgan_mnist.config import Config
    from dcgan_mnist.model import DCGAN
    v1 = tf.compat.v1
    cfg = Config(batch_size=batch, upstream_quirks=True)
    trX, trY = training_data()
    eager = DCGAN(**cfg.model_kwargs(), seed=0)
    initial = {v.name.split(":")[0]: v.numpy() for v in eager.trainable_variables}
    graph = tf.Graph()
    with graph.as_default():
        # The same network and initial weights, its variables made again as graph variables.
        model = copy.copy(eager)
        for name, value in initial.items():
            setattr(model, name, tf.Variable(value, name=name))
        Z_tf = v1.placeholder(tf.float32, [batch, cfg.dim_z])
        Y_tf = v1.placeholder(tf.float32, [batch, cfg.dim_y])
        image_tf = v1.placeholder(tf.float32, [batch, 28, 28, 1])
        d_cost, g_cost, p_real, p_gen = model.build_model(Z_tf, Y_tf, image_tf)
        train_d = v1.train.AdamOptimizer(cfg.learning_rate, beta1=cfg.beta1).minimize(
            d_cost, var_list=model.discrim_vars)
        train_g = v1.train.AdamOptimizer(cfg.learning_rate, beta1=cfg.beta1).minimize(
            g_cost, var_list=model.gen_vars)
        init = v1.global_variables_initializer()
    sess = v1.Session(graph=graph)
    sess.run(init)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(trX))

    def run_iteration(i):
        idx = order[(i * batch) % (len(trX) - batch):][:batch]
        Xs = trX[idx].reshape(batch, 28, 28, 1).astype(np.float64) / 255.0  # upstream's float64 copy
        Ys = np.eye(cfg.dim_y)[trY[idx]]
        Zs = rng.uniform(-1, 1, size=(batch, cfg.dim_z))
        feed = {Z_tf: Zs, Y_tf: Ys, image_tf: Xs}
        sess.run(train_d if i % cfg.k == 0 else train_g, feed_dict=feed)
        sess.run([g_cost, d_cost, p_real, p_gen], feed_dict=feed)  # upstream's second pass

    return run_iteration


def big_matmul_shapes(batch=128, dim_W1=1024, dim_W2=128, dim_y=10):
    """(m, k, n) of the step's largest matmuls: gen_W2's and discrim_W3's forward pass, and the
    input and weight gradients of each (a third of the step's FLOPs). The machine's rate on these
    shapes, not on a large square matmul, is what the step could reach."""
    shapes = []
    for k_in, n_out in ((dim_W1 + dim_y, dim_W2 * 49), (dim_W2 * 49 + dim_y, dim_W1)):
        shapes += [(batch, k_in, n_out), (batch, n_out, k_in), (k_in, batch, n_out)]
    return shapes


def matmul_rates(repeats=10):
    """{"float32": GFLOP/s, "bf16": GFLOP/s}: the best of `repeats` timings of the big matmuls, each
    dtype in one tf.function."""
    import tensorflow as tf
    rates = {}
    for name, dtype in (("float32", tf.float32), ("bf16", tf.bfloat16)):
        pairs = [(tf.cast(tf.random.normal([m, k]), dtype), tf.cast(tf.random.normal([k, n]), dtype))
                 for m, k, n in big_matmul_shapes()]
        run = tf.function(lambda pairs=pairs: [tf.matmul(a, b)[0, 0] for a, b in pairs])
        for _ in range(3):
            [x.numpy() for x in run()]
        wall, _ = time_loop(lambda i, run=run: [x.numpy() for x in run()], 0, repeats)
        rates[name] = sum(2 * m * k * n for m, k, n in big_matmul_shapes()) / min(wall) / 1e9
    return rates


def cpu_flags():
    """The CPU flags that decide the float32 and bfloat16 rates, as /proc/cpuinfo lists them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return "unknown"
    return " ".join(sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})) or "none of avx2/avx512"


def dtype_of(case):
    return "bf16" if case.startswith("bf16") else "float32"


def lever_of(case):
    """What a case changes: `bf16:LEVER` runs LEVER in bf16; any other case is its own."""
    return case.partition(":")[2] or case


# Cases that run another case under TensorFlow's stock settings for this CPU: without AVX-512
# VNNI/BF16 or AMX, TensorFlow leaves its oneDNN kernels off unless TF_ENABLE_ONEDNN_OPTS=1,
# which dcgan_mnist/__init__.py sets. upstream_stock is upstream's execution as a user of
# upstream gets it here; upstream (same settings as the project) is the stricter comparison.
STOCK = {"upstream_stock": "upstream", "onednn_off": "default"}


def make_case(name, batch):
    name = STOCK.get(name, name)
    return case_upstream(batch) if name == "upstream" else case_project(name, batch)


def interleaved(args):
    """All cases in this one process, timed in turns of 4 iterations: on a shared machine every
    case sees the same load, so their ratios hold even when the absolute times do not."""
    import numpy as np

    import dcgan_mnist  # noqa: F401
    set_threads(args.threads)
    runs = {c: make_case(c, args.batch_size) for c in args.cases.split(",")}
    wall = {c: [] for c in runs}
    for run in runs.values():
        for i in range(args.warmup):
            run(i)
    rates = {"float32": 0.0, "bf16": 0.0}
    for _turn in range(args.interleave):
        for c, run in runs.items():
            wall[c] += time_loop(run, 0, 4)[0]
        rates = {d: max(r, matmul_rates(3)[d]) for d, r in rates.items()}  # the best measured between turns
    wall = {c: pairs(w) for c, w in wall.items()}
    base = np.median(wall["upstream"]) if "upstream" in wall else None
    print(f"{args.interleave} turns of 4 iterations per case; load average {os.getloadavg()[0]:.2f}; "
          f"s/iteration over each D-and-G pair; CPU flags: {cpu_flags()}")
    print(f"the step's big matmuls, best between turns: float32 {rates['float32']:.0f} GFLOP/s, "
          f"bfloat16 {rates['bf16']:.0f} GFLOP/s")
    for c, w in wall.items():
        up = f", {base / np.median(w):.2f}x upstream" if base else ""
        rate = case_flops(c, args.batch_size) / np.median(w) / 1e9
        print(f"{c}: median {np.median(w):.4f} s/iteration (min {min(w):.4f}){up}; {rate:.0f} GFLOP/s, "
              f"{rate / rates[dtype_of(c)]:.0%} of the {dtype_of(c)} matmul rate")


def run_case(args):
    if args.run_case in STOCK:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    import dcgan_mnist  # noqa: F401  (silences TensorFlow's start-up noise)
    set_threads(args.threads)
    if args.run_case == "matmul":
        print(json.dumps(matmul_rates()))
        return
    else:
        wall, cpu = time_loop(make_case(args.run_case, args.batch_size), args.warmup, args.iterations)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    wait = INPUT_WAIT[-len(wall):] if INPUT_WAIT else None
    print(json.dumps(dict(wall=wall, cpu=cpu, rss=rss, input_wait=wait)))


# ---------------------------------------------------------------- the parent

def child(argv):
    """Run argv; return (stdout, peak RSS in bytes of that process alone)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(argv[1:4])}... failed (exit {proc.returncode})")
    return text, usage.ru_maxrss * 1024


RSS_ITERATIONS = 100


def training_rss(iterations=RSS_ITERATIONS):
    """Peak RSS of `python -m dcgan_mnist.train` on Fashion-MNIST's 60,000 training images."""
    if not os.path.isdir(FASHION):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        _, rss = child([sys.executable, "-m", "dcgan_mnist.train", "--dataset", "fashion_mnist",
                        "--data-dir", os.path.join(tmp, "none"), "--valid-size", "0",
                        "--max-iterations", str(iterations), "--log-every", str(iterations), "--step", "1000",
                        "--seed", "0", "--vis-dir", os.path.join(tmp, "vis"),
                        "--checkpoint-dir", os.path.join(tmp, "ckpt")])
    return rss


def pairs(xs):
    """Seconds per iteration of each D-and-G pair: iterations alternate a D and a cheaper G
    iteration, so a median over single iterations falls between the two clusters and hides
    a change to either; the pairs' mean is what an epoch takes."""
    return [(a + b) / 2 for a, b in zip(xs[0::2], xs[1::2])]


def stats(xs):
    xs = sorted(xs)
    return dict(median=xs[len(xs) // 2], min=xs[0], max=xs[-1])


def main(argv=None):
    p = argparse.ArgumentParser(prog="python scripts/benchmark.py", description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=40, help="timed iterations per case (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=6, help="untimed iterations first (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--cases", default="default,bf16,upstream,upstream_stock",
                   help="comma-separated (default: %(default)s)")
    p.add_argument("--levers", action="store_true",
                   help="also time thinned, plain, xla, unfused_adam, no_stack, no_ema, moments_bn, transposed_dense, "
                        "onednn_s2, onednn_off and default with threads 1,1 / 2,2 / 2,1")
    p.add_argument("--threads", help="intra,inter op threads for every case, e.g. 2,1 (default: TF's)")
    p.add_argument("--no-rss-run", action="store_true", help="skip the 60,000-image training run")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--flops", action="store_true", help="print the FLOP count and exit")
    p.add_argument("--interleave", type=int, metavar="TURNS",
                   help="run --cases in one process, taking turns of 4 iterations (fair ratios on a busy machine)")
    p.add_argument("--run-case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warmup % 2 or args.iterations % 2:
        p.error("--warmup and --iterations must be even: iterations alternate D and G, timed in pairs")
    if args.flops:
        return print_flops()
    if args.run_case:
        return run_case(args)
    if args.interleave:
        return interleaved(args)

    cases = args.cases.split(",")
    if args.levers:
        cases += ["thinned", "plain", "xla", "unfused_adam", "no_stack", "no_ema", "moments_bn", "transposed_dense",
                  "onednn_s2", "onednn_off",
                  "default@1,1", "default@2,2", "default@2,1"]
    load_before = os.getloadavg()
    results = {}
    for case in ["matmul"] + cases:
        name, _, threads = case.partition("@")
        cmd = [sys.executable, os.path.abspath(__file__), "--run-case", name, "--iterations", str(args.iterations),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
        if threads or args.threads:
            cmd += ["--threads", threads or args.threads]
        text, rss = child(cmd)
        results[case] = json.loads(text.strip().splitlines()[-1])
        if case != "matmul":
            results[case]["rss"] = rss
        print(f"... {case} done", file=sys.stderr, flush=True)
    rss_60k = None if args.no_rss_run else training_rss()

    rates = results.pop("matmul")
    fast, plain = iteration_flops(args.batch_size), iteration_flops(args.batch_size, fast=False)
    upstream = iteration_flops(args.batch_size, fast=False, second_forward=True)
    mean = lambda f: (f["D"] + f["G"]) / 2  # noqa: E731
    flops = {c: case_flops(c, args.batch_size) for c in results}
    report = dict(load_average_before=load_before, load_average_after=os.getloadavg(), cpu_flags=cpu_flags(),
                  matmul_gflops=rates, peak_rss_training_60k=rss_60k,
                  flops_per_iteration={"default": mean(fast), "plain": mean(plain), "upstream": mean(upstream)},
                  cases={})
    median = lambda c: stats(pairs(results[c]["wall"]))["median"] if c in results else None  # noqa: E731
    up, stock = median("upstream"), median("upstream_stock")
    for c, r in results.items():
        w, cpu = stats(pairs(r["wall"])), stats(pairs(r["cpu"]))
        report["cases"][c] = dict(
            s_per_iteration=w, cpu_s_per_iteration=cpu["median"], images_per_s=args.batch_size / w["median"],
            gflops=flops[c] / w["median"] / 1e9,
            share_of_matmul=flops[c] / w["median"] / 1e9 / rates[dtype_of(c.partition("@")[0])],
            speedup_over_upstream=(up / w["median"]) if up else None,
            speedup_over_upstream_stock=(stock / w["median"]) if stock else None,
            input_wait_ms=1e3 * stats(r["input_wait"])["max"] if r.get("input_wait") else None,
            peak_rss=r["rss"])
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"batch {args.batch_size}, {args.iterations} timed iterations after {args.warmup} warm-up, "
          f"alternating D and G; load average {load_before[0]:.2f} before, {report['load_average_after'][0]:.2f} after")
    print(f"CPU flags: {report['cpu_flags']}; the step's big matmuls (best of 10): float32 {rates['float32']:.0f} "
          f"GFLOP/s, bfloat16 {rates['bf16']:.0f} GFLOP/s; FLOP per iteration: default "
          f"{mean(fast) / 1e9:.1f} G, plain {mean(plain) / 1e9:.1f} G, upstream {mean(upstream) / 1e9:.1f} G "
          f"(its second forward pass included)")
    print("| case | s/iteration median (min-max) | CPU s/it | images/s | GFLOP/s | share of its dtype's matmul rate "
          "| speed-up over upstream (stock TF) | input wait, max | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    x = lambda v: f"{v:.2f}x" if v else "-"  # noqa: E731
    for c, r in report["cases"].items():
        w = r["s_per_iteration"]
        wait = f"{r['input_wait_ms']:.2f} ms" if r["input_wait_ms"] is not None else "-"
        print(f"| {c} | {w['median']:.4f} ({w['min']:.4f}-{w['max']:.4f}) | {r['cpu_s_per_iteration']:.4f} "
              f"| {r['images_per_s']:.0f} | {r['gflops']:.0f} | {100 * r['share_of_matmul']:.0f}% "
              f"| {x(r['speedup_over_upstream'])} ({x(r['speedup_over_upstream_stock'])}) | {wait} "
              f"| {r['peak_rss'] / 1e9:.3f} GB |")
    if rss_60k:
        print(f"peak RSS training on 60,000 Fashion-MNIST images (python -m dcgan_mnist.train, "
              f"{RSS_ITERATIONS} iterations and a checkpoint): {rss_60k / 1e9:.3f} GB (10^9 bytes)")


if __name__ == "__main__":
    sys.exit(main())
