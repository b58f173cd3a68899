"""docs/walkthrough.ipynb, the seed's walkthrough run on the package: executed top to bottom in a fresh
kernel, with docs/ as its working directory, as a reader would. Its cells assert every shape against the
walkthrough's, so a layer of model.py that changes size fails here, in the notebook.

The notebook is kept without outputs (this test checks it): its outputs are made here, from this
checkout's code."""
import os
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
NOTEBOOK = os.path.join(DOCS, "walkthrough.ipynb")
CELL_TIMEOUT = 120  # seconds; the whole notebook takes about 30 s on 2 cores

# The walkthrough's shapes, as the notebook prints them: the generator's h1, h2 after the label maps, h3
# after the label maps, h4; the discriminator's flattened h2 with the label, and h3 with the label.
SEED_SHAPES = ("h1 = [128, 1024]", "h2 = [128, 7, 7, 138]", "h3 = [128, 14, 14, 74]", "h4 = [128, 28, 28, 1]",
               "h2 = [128, 6282]", "h3 = [128, 1034]")


@pytest.mark.early  # the longest test outside a group
def test_the_walkthrough_runs_and_shows_the_seeds_shapes_and_pictures():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), \
        "docs/walkthrough.ipynb is kept without outputs: clear them before committing"
    assert "tf.Variable" not in nbformat.writes(nb), "the notebook defines no weights: they are the package's"

    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": DOCS}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as e:
        raise AssertionError(f"docs/walkthrough.ipynb failed:\n{e}") from None
    seconds = time.perf_counter() - start
    print(f"docs/walkthrough.ipynb ran in {seconds:.1f} s")

    outputs = [output for cell in code for output in cell.outputs]
    text = "\n" + "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    for line in SEED_SHAPES:
        assert f"\n{line}\n" in text, f"the notebook's outputs do not show {line}"
    assert "=========== updating D ==========" in text and "=========== updating G ==========" in text
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 3, f"{len(images)} pictures, expected the untrained, training and pretrained ones"
