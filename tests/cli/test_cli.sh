#!/usr/bin/env bash
# The fhetensor tool end to end on a small model: keygen, encrypt (.npy), run, decrypt,
# inspect, explain; then its refusals (exit 1 with a message, 2 for usage) and that a
# failed command leaves existing files untouched.
#   test_cli.sh <fhetensor> <make_fixtures>
set -euo pipefail
tool=$1 make_fixtures=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "FAILED: $*" >&2; exit 1; }
# expect_error <exit code> <message part> command...
expect_error() {
  local code=$1 part=$2; shift 2
  set +e; "$@" > out.txt 2> err.txt; local got=$?; set -e
  [[ $got == "$code" ]] || fail "$* exited $got, expected $code: $(cat err.txt)"
  grep -qF -- "$part" err.txt || fail "$* said '$(cat err.txt)', expected '$part'"
}

"$make_fixtures" model > /dev/null           # model.fhe and values.txt (input 1 3 0 2)
read -r _ x0 x1 x2 x3 < <(grep ^input model/values.txt)
read -r _ y0 y1 < <(grep ^output model/values.txt)
/usr/bin/python3 -c "import numpy; numpy.save('x.npy', numpy.array([$x0, $x1, $x2, $x3], dtype=numpy.int64))"
/usr/bin/python3 -c "import numpy; numpy.save('wrong.npy', numpy.array([1, 2, 3], dtype=numpy.int64))"

"$tool" keygen model/model.fhe -c client.keys -s server.keys
[[ $(stat -c %a client.keys) == 600 ]] || fail "client.keys is readable by others"
"$tool" encrypt model/model.fhe x.npy -k client.keys -o in.ct
"$tool" run model/model.fhe in.ct -s server.keys -o out.ct --no-progress
"$tool" decrypt model/model.fhe out.ct -k client.keys --npy y.npy | tee decrypted.txt
/usr/bin/python3 -c "import numpy, sys; y = numpy.load('y.npy').tolist(); sys.exit(0 if y == [$y0, $y1] else f'decrypted {y}, expected [$y0, $y1]')"
"$tool" inspect model/model.fhe server.keys in.ct out.ct | tee inspect.txt
grep -q "seeded" inspect.txt || fail "inspect does not show the seeded upload"
"$tool" explain model/model.fhe | grep -q "PBS" || fail "explain printed no plan"

# Refusals: clear messages, exit 1 for bad input, 2 for bad usage; outputs left as they were.
cp out.ct before.ct
head -c 1000 server.keys > cut.keys
expect_error 1 "truncated" "$tool" run model/model.fhe in.ct -s cut.keys -o out.ct
cmp -s out.ct before.ct || fail "a failed run changed out.ct"
expect_error 1 "expected server keys" "$tool" run model/model.fhe in.ct -s client.keys -o out.ct
expect_error 1 "the model expects [4]" "$tool" encrypt model/model.fhe wrong.npy -k client.keys -o in2.ct
[[ ! -e in2.ct ]] || fail "a failed encrypt wrote a file"
printf 'garbage' > garbage.fhe
expect_error 1 "not an fhetensor file" "$tool" inspect garbage.fhe
expect_error 1 "not output 0" "$tool" decrypt model/model.fhe in.ct -k client.keys
expect_error 2 "required" "$tool" encrypt model/model.fhe
expect_error 2 "" "$tool" frobnicate
echo "fhetensor tool: end to end and refusals passed"
