"""Every setting of a training run, with upstream's defaults, in one dataclass.

The command line of `python -m dcgan_mnist.train` is built from these fields (add_arguments), and
the settings of a run are saved beside its checkpoints (run.json, checkpoint.py) so that resume,
generate, evaluate and export read them back instead of asking the user again. Each setting's
default is written here only: the other modules read theirs from Config (Config.dim_z, ...). Numbers
elsewhere that look alike are other things: model.DCGAN's batch_size=100 is upstream model.py's own
default, and docstrings quoting upstream give upstream's figures.
"""
import dataclasses
import json
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Optional, Tuple

from dcgan_mnist.cli import UserError

RUN_FILE = "run.json"  # a run's settings and data fingerprint, written beside its checkpoints
METRICS_FILE = "metrics.jsonl"  # quality measured during training (evaluate.py), beside its checkpoints
WEIGHTS = ("average", "trained")  # what generate, evaluate and export draw from (--weights)
DATASETS = ("mnist", "fashion_mnist", "mnist_test")
VALID_SIZE = 10000  # held out by default (upstream's validation set)
VALID_SIZE_SHIPPED = 2000  # of the 10,000 shipped digits: 8,000 train, 62 iterations an epoch
# Upstream's image_shape and number of labels (its model.py's defaults): what MNIST-style data are, and
# the model's shape wherever no data decide it (model.DCGAN(), `python -m dcgan_mnist.model`).
IMAGE_SHAPE = (28, 28, 1)
N_LABELS = 10
# The generator's sizes (model.Generator's arguments, Config.generator_kwargs), and the settings
# model.DCGAN takes (Config.model_kwargs; `python -m dcgan_mnist.model` has a flag for each).
GENERATOR_SIZES = ("dim_z", "dim_y", "dim_W1", "dim_W2", "dim_W3", "dim_channel", "image_size")
MODEL_SETTINGS = ("batch_size", "upstream_quirks") + GENERATOR_SIZES
# Set from the data, not by a flag, so that generate, evaluate and export read them back from run.json.
FROM_DATA = ("class_names",)


class ConfigError(UserError, ValueError):
    """A flag or setting with a bad value; the message names the flag. Exit status 2."""


def _f(default, help, run=False, **kw):
    # run=True: the setting decides the run's weights and the order of its batches, so a
    # checkpoint folder holding another value cannot be resumed with this one.
    return field(default=default, metadata=dict(help=help, run=run, **kw))


@dataclass
class Config:
    # Upstream's hyperparameters (its train.py).
    n_epochs: int = _f(100, "epochs to train (upstream's code: 100)")
    learning_rate: float = _f(0.0002, "Adam learning rate, for D and G alike", run=True)
    beta1: float = _f(0.5, "Adam beta1 (beta2 0.999 and epsilon 1e-8 are TF1's defaults)", run=True)
    batch_size: int = _f(128, "images per iteration", run=True)
    dim_z: int = _f(100, "noise size, drawn from U(-1, 1) every iteration", run=True)
    dim_y: Optional[int] = _f(None, "number of labels, the one-hot size (default: the data's classes; MNIST: 10)",
                              run=True)
    dim_W1: int = _f(1024, "units of the fully connected layers", run=True)
    dim_W2: int = _f(128, "channels at a quarter of the image size (7 x 7 for 28 x 28)", run=True)
    dim_W3: int = _f(64, "channels at half the image size (14 x 14 for 28 x 28)", run=True)
    dim_channel: Optional[int] = _f(None, "image channels: 1 (grey) or 3 (colour); given, every image is converted "
                                          "(default: the data's; MNIST: 1)", run=True)
    # Upstream's DCGAN took image_shape and then wrote 28, 14 and 7 into its passes; honoured here.
    image_size: Optional[Tuple[int, int]] = _f(None, "image size N (square) or H W, each divisible by 4; given, "
                                                     "every image is resized (default: the data's; MNIST: 28 x 28)",
                                               run=True, nargs="+")
    visualize_dim: int = _f(196, "samples per grid; a square number (196: 14 x 14)")
    k: int = _f(2, "D is updated when iteration %% k == 0, G otherwise", run=True)
    step: int = _f(200, "write a grid every STEP iterations")

    # The port's own settings.
    upstream_quirks: bool = _f(False, "restore upstream's three defects (clipped logits, batchnormed D "
                                      "logit, (x+1)/2 grids) to reproduce its original run", run=True)
    seed: Optional[int] = _f(None, "seed for weights, noise, shuffling and grids; drawn and printed "
                                   "when not given", run=True)
    max_iterations: Optional[int] = _f(None, "stop after this many iterations in all (short runs)")
    log_every: int = _f(1, "print upstream's six log lines every N iterations")
    data_dir: str = _f("data", "folder with the IDX files (raw or .gz) or mnist.npz")
    dataset: Optional[str] = _f(None, "mnist or fashion_mnist: what to download or look for when --data-dir has no "
                                      "files; mnist_test: MNIST's 10,000 test digits shipped with the package "
                                      "(default: mnist, or mnist_test when MNIST can be neither found nor "
                                      "downloaded)", run=True, choices=DATASETS)
    train_images: Optional[str] = _f(None, "an IDX image file to train on instead (with --train-labels)")
    train_labels: Optional[str] = _f(None, "the IDX label file that goes with --train-images")
    image_folder: Optional[str] = _f(None, "train on a folder of images instead, one subfolder per class "
                                           "(PNG, JPEG, BMP, GIF; docs/usage.md)")
    class_names: Optional[Tuple[str, ...]] = _f(None, "the data's classes, label 0 first (set from the data; "
                                                      "None: the digits 0 to dim_y - 1)")
    valid_size: Optional[int] = _f(None, f"training images held out for validation (default: {VALID_SIZE}, "
                                         f"upstream's last {VALID_SIZE} of a seeded shuffle; {VALID_SIZE_SHIPPED} "
                                         f"for mnist_test; a sixth of an --image-folder, at most {VALID_SIZE})",
                                   run=True)
    vis_dir: str = _f("vis", "where sample_%%04d.jpg grids are written")
    checkpoint_dir: str = _f("checkpoints", "checkpoints and the run's record (run.json); a run resumes from here")
    checkpoint_every: Optional[int] = _f(None, "also write a checkpoint every N iterations (default: at the end "
                                               "of each epoch and of the run only)")
    keep_checkpoints: int = _f(10, "checkpoints kept in --checkpoint-dir, the oldest deleted as new ones are written "
                                   "(upstream's unused Saver: max_to_keep=10); each is about 190 MB at the default "
                                   "sizes; below 2 leaves no earlier one to fall back on if the newest is damaged")
    force_new: bool = _f(False, "start a new run even if --checkpoint-dir holds one: its checkpoints are "
                                "moved aside to CHECKPOINT_DIR.old-TIMESTAMP, never deleted")
    verbose: bool = _f(False, "show TensorFlow's own start-up messages")
    # Scaling out and watching a run (README: "More ways to run"; docs/distributed.md).
    strategy: str = _f("auto", "devices to train on: one, mirrored (every local GPU), multiworker (hosts "
                               "named by TF_CONFIG); auto: multiworker if TF_CONFIG is set, mirrored if "
                               "several GPUs are visible, else one", choices=("auto", "one", "mirrored", "multiworker"))
    logdir: Optional[str] = _f(None, "write TensorBoard summaries (losses, P(real), P(gen), s/iteration, grids) here")
    progress: bool = _f(False, "a progress bar per epoch (ETA, it/s, latest losses) instead of the six-line log")
    gif: bool = _f(False, "only build VIS_DIR/progress.gif from the grids already there, then exit "
                          "(a completed run also builds it)")
    ema_decay: float = _f(0.999, "decay of the averaged generator (tf.train.ExponentialMovingAverage of "
                                 "gen_W1..gen_W4, updated after every G iteration, decay capped by (1 + t) / "
                                 "(10 + t) after t G updates); generate, evaluate and export draw from it; 0: none",
                          run=True)
    # Sample quality during training (dcgan_mnist/evaluate.py); figures go to CHECKPOINT_DIR/metrics.jsonl.
    eval_every_epoch: bool = _f(False, "measure sample quality at the end of every epoch")
    eval_every: Optional[int] = _f(None, "measure sample quality every N iterations")
    eval_n_per_label: int = _f(1000, "images generated per label for each quality measurement")
    precision: str = _f("float32", "compute dtype of the training step; bf16: bfloat16 convs and matmuls, "
                                   "float32 weights, Adam state and costs (fast only on CPUs with bf16 "
                                   "instructions, see docs/speed.md)", choices=("float32", "bf16"))

    # ---- derived and checked ----
    def __post_init__(self):
        # JSON (run.json) gives lists, --image-size one or two numbers: one form, so records compare equal.
        if self.image_size is not None:
            size = tuple(self.image_size)
            self.image_size = size * 2 if len(size) == 1 else size
        if self.class_names is not None:
            self.class_names = tuple(self.class_names)

    def image_shape(self):
        """[H, W, C]: --image-size and --dim-channel, upstream's 28 x 28 x 1 where the data have not
        decided them yet."""
        H, W = self.image_size or IMAGE_SHAPE[:2]
        return [H, W, self.dim_channel or IMAGE_SHAPE[2]]

    def generator_kwargs(self):
        """model.Generator's sizes: Generator(**cfg.generator_kwargs()) has the run's shapes."""
        sizes = {name: getattr(self, name) for name in GENERATOR_SIZES}
        H, W, C = self.image_shape()
        return dict(sizes, dim_y=self.dim_y or N_LABELS, dim_channel=C, image_size=(H, W))

    def model_kwargs(self):
        """model.DCGAN's arguments."""
        kwargs = self.generator_kwargs()
        image_shape = [*kwargs.pop("image_size"), kwargs["dim_channel"]]
        return dict(batch_size=self.batch_size, image_shape=image_shape, upstream_quirks=self.upstream_quirks,
                    **kwargs)

    def label_names(self):
        """The name of each label: the data's classes, else the digits."""
        return self.class_names or tuple(str(i) for i in range(self.dim_y or N_LABELS))

    def held_out(self, n_images=None):
        """--valid-size, or its default for --dataset; for an image folder of n_images, a sixth of them
        (upstream held out 10,000 of MNIST's 60,000), at most VALID_SIZE."""
        if self.valid_size is not None:
            return self.valid_size
        if self.image_folder is not None and n_images is not None:
            return min(VALID_SIZE, n_images // 6)
        return VALID_SIZE_SHIPPED if self.dataset == "mnist_test" else VALID_SIZE

    def validate(self):
        """Raise ConfigError naming the first bad flag. Checks against the data (--valid-size, --batch-size
        against the number of images) happen when train.py has loaded it."""
        def bad(name, why):
            raise ConfigError(f"--{flag_name(name)} {getattr(self, name)}: {why}")

        for name in ("batch_size", "k", "step", "dim_z", "dim_y", "dim_W1", "dim_W2", "dim_W3",
                     "visualize_dim", "log_every", "eval_n_per_label", "keep_checkpoints"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                bad(name, "must be at least 1")
        if self.dim_channel not in (None, 1, 3):
            bad("dim_channel", "must be 1 (grey) or 3 (colour)")
        if self.image_size is not None:
            given = " ".join(map(str, self.image_size))
            if len(self.image_size) != 2:
                raise ConfigError(f"--image-size {given}: give one size N (square) or two, H W")
            problem = image_size_problem(self.image_size)
            if problem:
                raise ConfigError(f"--image-size {given}: {problem} would do")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            bad("learning_rate", "must be a number above 0")
        if not 0 <= self.beta1 < 1:
            bad("beta1", "must be in [0, 1)")
        if self.n_epochs < 0:
            bad("n_epochs", "must not be negative")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            bad("checkpoint_every", "must be at least 1")
        if self.max_iterations is not None and self.max_iterations < 0:
            bad("max_iterations", "must not be negative")
        if self.eval_every is not None and self.eval_every < 1:
            bad("eval_every", "must be at least 1")
        if not 0 <= self.ema_decay < 1:
            bad("ema_decay", "must be in [0, 1) (0: no averaged generator)")
        if self.valid_size is not None and self.valid_size < 0:
            bad("valid_size", "must not be negative")
        if math.isqrt(self.visualize_dim) ** 2 != self.visualize_dim:
            bad("visualize_dim", "must be a square number (the grid is n x n)")
        if self.seed is not None and not 0 <= self.seed < 2 ** 63:
            bad("seed", "must be in [0, 2**63)")
        if (self.train_images is None) != (self.train_labels is None):
            missing = "train_labels" if self.train_labels is None else "train_images"
            raise ConfigError(f"--{flag_name(missing)} is missing: --train-images and --train-labels go together")
        for name in ("train_images", "train_labels"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                bad(name, "no such file")
        if self.image_folder is not None:
            if self.train_images is not None:
                raise ConfigError("--image-folder and --train-images exclude each other: train on one of them")
            if not os.path.isdir(self.image_folder):
                bad("image_folder", "no such folder")
        return self

    # ---- the run's record beside its checkpoints ----
    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        known = {f.name for f in dataclasses.fields(cls)}
        record = json.loads(text)
        if "image_size" not in record:  # a record of 0.1.x, whose model took 28 x 28 only
            record["image_size"] = IMAGE_SHAPE[:2]
        return cls(**{k: v for k, v in record.items() if k in known})

    def run_differences(self, other):
        """Names of the run-deciding settings (run=True) whose values differ from other's."""
        return [f.name for f in dataclasses.fields(self)
                if f.metadata["run"] and getattr(self, f.name) != getattr(other, f.name)]


def size_flag(height, width):
    """The --image-size flag of a size: one number for a square."""
    return f"--image-size {height}" if height == width else f"--image-size {height} {width}"


def image_size_problem(size):
    """Why (H, W) does not suit the network, whose two stride-2 layers halve it twice (upstream's
    28 -> 14 -> 7), ending with the --image-size flags of the nearest sizes that do (for the caller to
    say what they would do); None when it suits."""
    height, width = size
    if height % 4 == 0 and width % 4 == 0 and min(height, width) >= 4:
        return None

    def nearest(n):  # the multiples of 4 nearest n: below (when there is one) and above
        return [m for m in (n // 4 * 4, (n + 3) // 4 * 4) if m >= 4]

    hs, ws = nearest(max(height, 1)), nearest(max(width, 1))
    sizes = sorted({(hs[0], ws[0]), (hs[-1], ws[-1])})
    return (f"height and width must be multiples of 4, at least 4 (the network halves them twice); "
            f"{' or '.join(size_flag(h, w) for h, w in sizes)}")


def flag_name(field_name):
    return field_name.lower().replace("_", "-")


def add_arguments(parser, cls=Config, only=None):
    """One flag per field (or per field named in `only`), named --field-name, its default and help
    taken from the dataclass."""
    for f in dataclasses.fields(cls):
        if (only is not None and f.name not in only) or f.name in FROM_DATA:
            continue
        flag = "--" + flag_name(f.name)
        if f.type is bool:
            parser.add_argument(flag, dest=f.name, action="store_true", help=f.metadata["help"])
            continue
        kind = f.type
        if typing.get_origin(kind) is typing.Union:  # Optional[int] -> int
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if typing.get_origin(kind) is tuple:  # Tuple[int, int] -> int, nargs from the metadata
            kind = typing.get_args(kind)[0]
        help_text = f.metadata["help"] + ("" if f.default is None else " (default: %(default)s)")
        parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_text,
                            metavar=f.name.upper(), choices=f.metadata.get("choices"), nargs=f.metadata.get("nargs"))
    return parser


def add_checkpoint_arguments(parser):
    """--checkpoint-dir, --checkpoint, --weights and --pretrained, as generate, evaluate and export take
    them (checkpoint.load_generator reads them)."""
    parser.add_argument("--checkpoint-dir", help="the run's checkpoint folder; its latest checkpoint is used "
                                                 f"(default: {Config.checkpoint_dir})")
    parser.add_argument("--checkpoint", help="a particular checkpoint, e.g. checkpoints/ckpt-780")
    parser.add_argument("--weights", choices=WEIGHTS,
                        help="draw from the averaged generator (--ema-decay) or the trained weights "
                             "(default: the average when the run has one)")
    parser.add_argument("--pretrained", action="store_true",
                        help="draw from the generator shipped with the package (trained on the shipped digits), "
                             "instead of a run's checkpoint")


def check_sampling_arguments(parser, args, outputs):
    """--n-per-label and --seed of generate/evaluate, and that each output's folder exists;
    outputs: (flag, path) pairs, path None when not asked for."""
    if args.n_per_label < 1:
        parser.error(f"--n-per-label {args.n_per_label}: must be at least 1")
    if args.seed < 0:
        parser.error(f"--seed {args.seed}: must not be negative")
    check_output_folders(parser, outputs)


def check_output_folders(parser, outputs):
    """That each output's folder exists; outputs: (flag, path) pairs, path None when not asked for."""
    for flag, path in outputs:
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"{flag} {path}: folder {os.path.dirname(path)} does not exist")


def from_args(args, cls=Config):
    """The Config of parsed flags; fields without a flag (add_arguments' `only`) keep their defaults."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})
