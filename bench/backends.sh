# Sourced by the bench scripts: the server's storage options, and a private PostgreSQL + S3 pair.
#
#   backend_option "$@"         # consumes one storage option; sets BACKEND_SHIFT (0: not ours)
#   backend_start_scaleout DIR  # starts scripts/postgres.sh's cluster and an s3s-fs over DIR/s3root
#   backend_stop                # stops what backend_start_scaleout started
#
# SERVER_FLAGS (an array) holds the flags to pass to `modelyard serve`: --metadata, --blobs and
# the --s3-* options given on the command line, or those of the started pair. Credentials of an
# S3 endpoint given on the command line come from the usual AWS_* variables.

SERVER_FLAGS=()
BACKEND_LABEL=embedded
BACKEND_PG_DIR=""
BACKEND_S3_PID=""

backend_option() {
  BACKEND_SHIFT=0
  case "$1" in
    --metadata|--blobs|--s3-endpoint|--s3-region)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      SERVER_FLAGS+=("$1" "$2"); BACKEND_SHIFT=2
      [ "$1" = --metadata ] && [ "$2" != sled ] && BACKEND_LABEL=custom
      [ "$1" = --blobs ] && [ "$2" != local ] && BACKEND_LABEL=custom ;;
    --s3-path-style|--s3-allow-http)
      SERVER_FLAGS+=("$1"); BACKEND_SHIFT=1 ;;
  esac
  return 0
}

backend_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

backend_start_scaleout() {
  local dir=$1 port exports
  scripts/s3.sh >&2
  exports=$(MODELYARD_PG_DURABLE=1 scripts/postgres.sh start)
  eval "$exports"
  BACKEND_PG_DIR=$MODELYARD_TEST_POSTGRES_DIR
  mkdir -p "$dir/s3root/mlreg"
  port=$(backend_free_port)
  s3s-fs --host 127.0.0.1 --port "$port" --access-key bench-key --secret-key bench-secret-0123456789 \
    "$dir/s3root" >/dev/null 2>&1 &
  BACKEND_S3_PID=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  export AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret-0123456789
  SERVER_FLAGS+=(--metadata "$MODELYARD_TEST_POSTGRES_URL" --blobs s3://mlreg/bench
    --s3-endpoint "http://127.0.0.1:$port" --s3-region us-east-1 --s3-path-style --s3-allow-http)
  BACKEND_LABEL="PostgreSQL + S3"
}

backend_stop() {
  if [ -n "$BACKEND_S3_PID" ]; then kill "$BACKEND_S3_PID" 2>/dev/null || true; BACKEND_S3_PID=""; fi
  if [ -n "$BACKEND_PG_DIR" ]; then scripts/postgres.sh stop "$BACKEND_PG_DIR" >&2 || true; BACKEND_PG_DIR=""; fi
}
