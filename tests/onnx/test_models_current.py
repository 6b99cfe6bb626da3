"""The imported models committed in models/ are what tools/onnx_import.py makes of their
ONNX files today: re-imports each into a temporary folder and compares the bytes."""
import filecmp
import json
import pathlib
import subprocess
import sys
import tempfile

root = pathlib.Path(sys.argv[1])
stale = []
with tempfile.TemporaryDirectory() as out:
    for onnx_file in sorted(root.glob("models/*/*.onnx")):
        # A model fine-tuned by tools/qat.py keeps the header of the model it came from.
        summary = onnx_file.with_suffix(".json")
        header = json.loads(summary.read_text()).get("header") if summary.exists() else None
        name = pathlib.Path(header).stem if header else onnx_file.stem
        subprocess.run([sys.executable, str(root / "tools/onnx_import.py"), str(onnx_file), "--name", name,
                        "--out-dir", out], check=True, stdout=subprocess.DEVNULL)
        made = pathlib.Path(out) / name
        header = onnx_file.parent / (name + ".hpp")
        # Past the header's first line, which names the ONNX file it came from.
        if header.read_text().split("\n", 1)[1] != made.with_suffix(".hpp").read_text().split("\n", 1)[1]:
            stale.append(f"{header} (from {onnx_file.name})")
        if not filecmp.cmp(onnx_file.with_suffix(".weights"), made.with_suffix(".weights"), shallow=False):
            stale.append(str(onnx_file.with_suffix(".weights")))
        print(f"{onnx_file.relative_to(root)}: header and weights current")
if stale:
    sys.exit("stale imports (rerun tools/onnx_import.py): " + ", ".join(stale))
