#!/usr/bin/env bash
# Lints every CloudFormation template the generators produce, for several sets of
# options, with cfn-lint (pip install cfn-lint). Any error or warning fails.
# The plain IAM documents (caller policy, audit role policy and trust) are not
# templates: each is wrapped in a throwaway template so cfn-lint's IAM checks
# (known actions, policy grammar) see them too.
#
#   tests/cfn_lint.sh            # from the repository root, or anywhere
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if ! command -v cfn-lint >/dev/null 2>&1; then
    echo "cfn_lint.sh: cfn-lint not found (pip install cfn-lint)" >&2
    exit 2
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

cargo run --quiet --example gen_templates -- "$out/generated"

# Wrap the plain policy documents. The trust placeholder is an invalid account
# on purpose (so nobody applies it unedited); a sample id stands in for linting.
mkdir -p "$out/wrapped"
for dir in "$out"/generated/*/; do
    profile="$(basename "$dir")"
    python3 - "$dir" "$out/wrapped/$profile.json" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
def load(name):
    with open(src + name) as f:
        return json.load(f)
trust = json.loads(json.dumps(load("audit-role-trust.json")).replace("TRUSTED_ACCOUNT_ID", "123456789012"))
template = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "Lint wrapper for the plain IAM documents of ssm-session-audit",
    "Resources": {
        "CallerPolicy": {"Type": "AWS::IAM::ManagedPolicy",
                         "Properties": {"PolicyDocument": load("caller-policy.json")}},
        "AuditRole": {"Type": "AWS::IAM::Role",
                      "Properties": {"AssumeRolePolicyDocument": trust,
                                     "Policies": [{"PolicyName": "audit",
                                                   "PolicyDocument": load("audit-role-policy.json")}]}},
    },
}
with open(dst, "w") as f:
    json.dump(template, f, indent=2)
PY
done

templates=()
for f in "$out"/generated/*/alerts-*.json "$out"/generated/*/audit-role.json "$out"/wrapped/*.json; do
    templates+=("$f")
done
if [ "${#templates[@]}" -lt 15 ]; then
    echo "cfn_lint.sh: expected at least 15 templates, found ${#templates[@]}" >&2
    exit 1
fi

status=0
for f in "${templates[@]}"; do
    name="${f#"$out"/}"
    if cfn-lint --non-zero-exit-code warning --regions us-east-1 eu-west-1 -- "$f"; then
        echo "ok    $name"
    else
        echo "FAIL  $name" >&2
        status=1
    fi
done
exit "$status"
