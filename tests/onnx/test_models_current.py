"""The imported models committed in models/ are what tools/onnx_import.py makes of their
ONNX files today: re-imports each into a temporary folder and compares the bytes."""
import filecmp
import pathlib
import subprocess
import sys
import tempfile

root = pathlib.Path(sys.argv[1])
stale = []
with tempfile.TemporaryDirectory() as out:
    for onnx_file in sorted(root.glob("models/*/*.onnx")):
        name = onnx_file.stem
        subprocess.run([sys.executable, str(root / "tools/onnx_import.py"), str(onnx_file), "--name", name,
                        "--out-dir", out], check=True, stdout=subprocess.DEVNULL)
        for suffix in (".hpp", ".weights"):
            if not filecmp.cmp(onnx_file.with_suffix(suffix), pathlib.Path(out) / (name + suffix), shallow=False):
                stale.append(str(onnx_file.with_suffix(suffix)))
        print(f"{onnx_file.relative_to(root)}: header and weights current")
if stale:
    sys.exit("stale imports (rerun tools/onnx_import.py): " + ", ".join(stale))
