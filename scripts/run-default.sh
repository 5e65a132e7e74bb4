#!/bin/sh
# `make run`: generate a story with the default model.
#   $1  the celer binary
# Uses $CELER_DATA/models/stories260K.gguf (CELER_DATA defaults to ../shared) when it is
# there; otherwise pulls ggml-org/models tinyllamas/stories260K.gguf from Hugging Face into
# the cache (once; later runs use the cached copy) with `celer pull`.
set -e
CELER=${1:?usage: run-default.sh CELER_BINARY}
MODEL="${CELER_DATA:-../shared}/models/stories260K.gguf"
if [ ! -f "$MODEL" ]; then
    echo "run-default: $MODEL not found; pulling ggml-org/models tinyllamas/stories260K.gguf" >&2
    MODEL=$("$CELER" pull ggml-org/models tinyllamas/stories260K.gguf)
fi
exec "$CELER" run -m "$MODEL" -p "Once upon a time" -n 200
