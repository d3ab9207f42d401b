#!/usr/bin/env bash
# Starts the Claude Code CLI with only the environment the app chose for it.
# The SDK merges the app's whole environment into the child's; this wrapper drops everything
# not named in AGENT_ENV_KEYS, so the app's secrets never reach the agent (or its Bash tool).
set -euo pipefail
keep=()
for key in $AGENT_ENV_KEYS; do
  if [[ -v $key ]]; then keep+=("$key=${!key}"); fi
done
# Variables the SDK itself sets to talk to the CLI.
while IFS='=' read -r key _; do
  case $key in
    CLAUDE_AGENT_SDK_*|CLAUDE_CODE_ENTRYPOINT|CLAUDE_CODE_SDK_*|CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING)
      keep+=("$key=${!key}") ;;
  esac
done < <(env)
exec env -i "${keep[@]}" "$AGENT_REAL_CLI" "$@"
