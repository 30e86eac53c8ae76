#!/bin/bash
# docker-mailserver runs this before it starts Postfix. It adds the `gateway` transport that
# postfix-master.cf's content_filter names: Postfix's SMTP client towards the gateway, with
# the timeouts and options a content filter needs (docs/operations.md, "With Postfix").
# Idempotent: a restarted container keeps its master.cf.
set -euo pipefail

if ! grep -q '^gateway[[:space:]]' /etc/postfix/master.cf; then
  cat >> /etc/postfix/master.cf <<'MASTER'
# The district mail gateway as a content filter; keep the process limit (10) at or below the
# gateway's smtp.max_sessions.
gateway   unix  -       -       n       -       10      smtp
    -o smtp_data_done_timeout=1200s
    -o smtp_send_xforward_command=no
    -o disable_mime_output_conversion=yes
MASTER
fi
