#!/usr/bin/env bash
# The organization-wide loop people write with the AWS CLI, as the CloudTrail docs
# suggest: list the accounts, assume a role in each, then `aws cloudtrail
# lookup-events` per region and event name (the CLI reads every page itself).
# Sequential; the CLI's default retries; an error is printed and the loop goes on.
#
# Usage (the benchmark runs it; see benches/peers/README.md):
#   AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
#   aws_cli_loop.sh OUT_IDS START END REGIONS [ROLE_NAME]
# Writes every EventId read (one per line) to OUT_IDS, failures to stderr, and a
# one-line JSON summary to stdout.
set -u
out=$1 start=$2 end=$3 regions=$4 role=${5:-SessionAuditRole}
names="StartSession ResumeSession TerminateSession"
: >"$out"
failed=0
calls=0
began=$(date +%s.%N)

me=$(aws sts get-caller-identity --query Account --output text)
accounts=$(aws organizations list-accounts --query "Accounts[?State=='ACTIVE'].Id" --output text)
calls=$((calls + 2))
for acct in $accounts; do
  if [ "$acct" = "$me" ]; then
    ak=$AWS_ACCESS_KEY_ID sk=$AWS_SECRET_ACCESS_KEY st=${AWS_SESSION_TOKEN:-}
  else
    creds=$(aws sts assume-role --role-arn "arn:aws:iam::$acct:role/$role" \
      --role-session-name session-audit \
      --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
    rc=$?
    calls=$((calls + 1))
    if [ $rc -ne 0 ]; then
      echo "assume-role $acct failed" >&2
      failed=$((failed + 1))
      continue
    fi
    read -r ak sk st <<<"$creds"
  fi
  for region in ${regions//,/ }; do
    for name in $names; do
      calls=$((calls + 1))
      if ids=$(AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_SESSION_TOKEN=$st \
        aws cloudtrail lookup-events --region "$region" \
          --lookup-attributes "AttributeKey=EventName,AttributeValue=$name" \
          --start-time "$start" --end-time "$end" \
          --query 'Events[].EventId' --output text); then
        tr '\t' '\n' <<<"$ids" | grep -v -e '^None$' -e '^$' >>"$out"
      else
        # The CLI prints nothing when a page fails after its retries: the job's events are lost.
        echo "lookup-events $acct $region $name failed" >&2
        failed=$((failed + 1))
      fi
    done
  done
done
now=$(date +%s.%N)
printf '{"tool":"aws-cli-loop","aws_cli":"%s","invocations":%d,"failed_jobs":%d,"events":%d,"seconds":%s}\n' \
  "$(aws --version 2>&1 | cut -d' ' -f1)" "$calls" "$failed" "$(wc -l <"$out")" "$(echo "$now - $began" | bc)"
