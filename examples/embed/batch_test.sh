#!/usr/bin/env bash
# bindery-embed batch mode (--input-dir / --input-list) on a few dozen files copied from the committed
# fixtures into a scratch folder: the shards equal, byte for byte, the embeddings of the same files
# given the one-shot way; a rerun reuses every complete shard (files untouched); a deleted shard is
# recomputed identically; a changed input invalidates only its shard; a corrupt file lands in
# errors.txt; --fail-fast stops on it.
#   batch_test.sh BINDERY_EMBED RUN_DIR (model.safetensors + config.json) REFERENCE_DIR WORK_DIR
set -euo pipefail
embed=$1 run=$2 reference=$3 work=$4
model=(--weights "$run/model.safetensors" --config "$run/config.json" --threads 1)
fail() { echo "FAIL: $*"; exit 1; }

rm -rf "$work" && mkdir -p "$work/in/a" "$work/in/b/c"
for dir in a b/c; do
  cp "$reference"/image/decode_*.png "$reference"/image/decode_*.jpg "$reference"/audio/wav/*.wav "$work/in/$dir/"
done
cp "$reference/model/cases.txt" "$work/in/a/corrupt.png"  # text under an image name
echo "not an input" > "$work/in/b/notes.md"              # no modality for .md: ignored

batch=(--batch 16 --shard-size 16 --decode-threads 3 --no-progress)
"$embed" "${model[@]}" --input-dir "$work/in" --out "$work/out" "${batch[@]}" > "$work/run1.log" 2>&1 ||
  { cat "$work/run1.log"; fail "first run"; }
grep -q "1 other files ignored" "$work/run1.log" || fail "notes.md not reported as ignored"
grep -q "1 errors (1 new" "$work/run1.log" || { cat "$work/run1.log"; fail "summary"; }
grep -q "^$work/in/a/corrupt.png	.*not a PNG or JPEG" "$work/out/errors.txt" || fail "errors.txt: $(cat "$work/out/errors.txt")"
grep -q "corrupt.png" "$work/out/vision-00000.txt" && fail "the corrupt file has a row"

# Each shard == the one-shot way on the shard's files (the .txt lists them, row by row).
for shard in "$work"/out/*-00000.npy "$work"/out/vision-00001.npy; do
  name=$(basename "$shard" .npy)
  modality=${name%-*}
  mapfile -t files < "$work/out/$name.txt"
  "$embed" "${model[@]}" --"$modality" "${files[@]}" --out "$work/one_shot_$name" > /dev/null 2>&1
  cmp "$shard" "$work/one_shot_$name/$modality.npy" || fail "$name differs from the one-shot embeddings"
done

# A rerun reuses every shard and rewrites none of them.
stat -c '%n %y' "$work"/out/*-0000?.* > "$work/mtimes.before"
"$embed" "${model[@]}" --input-dir "$work/in" --out "$work/out" "${batch[@]}" > "$work/run2.log" 2>&1
shards=$(ls "$work"/out/*-0000?.json | wc -l)
[ "$(grep -c '^skip .*: complete' "$work/run2.log")" = "$shards" ] || { cat "$work/run2.log"; fail "rerun skipped"; }
grep -Eq "^embedded 0 files \([0-9]+ reused from $shards complete shards\)" "$work/run2.log" || fail "rerun summary"
stat -c '%n %y' "$work"/out/*-0000?.* | diff "$work/mtimes.before" - || fail "a complete shard was rewritten"

# A deleted shard is recomputed, identically; only it.
cp "$work/out/vision-00001.npy" "$work/vision-00001.saved"
rm "$work/out/vision-00001.npy"
"$embed" "${model[@]}" --input-dir "$work/in" --out "$work/out" "${batch[@]}" > "$work/run3.log" 2>&1
grep -q "^embedded 16 files" "$work/run3.log" || { cat "$work/run3.log"; fail "deleted shard: summary"; }
cmp "$work/out/vision-00001.npy" "$work/vision-00001.saved" || fail "the recomputed shard differs"

# A changed input (another size) invalidates its shard only.
printf 'x' >> "$work/in/b/c/u8_8k_mono_7s.wav"
"$embed" "${model[@]}" --input-dir "$work/in" --out "$work/out" "${batch[@]}" > "$work/run4.log" 2>&1
grep -q "^embedded 16 files" "$work/run4.log" || { cat "$work/run4.log"; fail "changed input: summary"; }
grep -q "^skip audio-00000" "$work/run4.log" && fail "the changed input's shard was reused"

# The same files as a list (MODALITY<TAB>PATH for the WAVs), decoded on 1 thread: the same shards.
find "$work/in" -type f \( -name '*.png' -o -name '*.jpg' \) > "$work/list.txt"
find "$work/in" -type f -name '*.wav' | sed 's/^/audio\t/' >> "$work/list.txt"
"$embed" "${model[@]}" --input-list "$work/list.txt" --out "$work/out_list" --batch 16 --shard-size 16 \
  --decode-threads 1 --no-progress > "$work/run5.log" 2>&1 || { cat "$work/run5.log"; fail "list run"; }
for shard in "$work"/out/*.npy; do
  cmp "$shard" "$work/out_list/$(basename "$shard")" || fail "list run: $(basename "$shard") differs"
done

# --fail-fast: exit 2 naming the file.
if "$embed" "${model[@]}" --input-dir "$work/in/a" --out "$work/out_fail" --fail-fast --no-progress \
  > "$work/run6.log" 2>&1; then fail "--fail-fast exited 0"; fi
grep -q "bindery-embed: .*corrupt.png: not a PNG or JPEG.*--fail-fast" "$work/run6.log" || fail "--fail-fast message"
echo "PASS: $shards shards equal the one-shot embeddings; rerun, deleted shard, changed input, list and --fail-fast checked"
