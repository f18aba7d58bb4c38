#!/usr/bin/env bash
# Lints every CloudFormation template the generators produce, for several sets of
# options, with cfn-lint and checkov (pip install cfn-lint checkov). Any cfn-lint
# error or warning fails, and so does any failed checkov check. The plain IAM
# documents (caller policy, audit role policy and trust) are not templates: each
# is wrapped in a throwaway template so the IAM checks (known actions, policy
# grammar, wildcards) see them too. A checkov check is skipped only where a
# template says so in a resource's Metadata (checkov.skip, with the reason).
#
#   tests/cfn_lint.sh            # from the repository root, or anywhere
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

for tool in cfn-lint checkov; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "cfn_lint.sh: $tool not found (pip install cfn-lint checkov)" >&2
        exit 2
    fi
done

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
for f in "$out"/generated/*/alerts-*.json "$out"/generated/*/audit-role.json \
         "$out"/generated/*/scheduled-scan.json "$out"/wrapped/*.json; do
    templates+=("$f")
done
if [ "${#templates[@]}" -lt 18 ]; then
    echo "cfn_lint.sh: expected at least 18 templates, found ${#templates[@]}" >&2
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

# checkov: every template at once. --skip-download keeps it off the network
# (no policy metadata from its vendor's API); the checks are all local.
mkdir -p "$out/checkov"
for f in "${templates[@]}"; do
    rel="${f#"$out"/}"
    cp "$f" "$out/checkov/${rel//\//_}"
done
if checkov --quiet --compact --skip-download --framework cloudformation \
        --directory "$out/checkov" > "$out/checkov.log" 2>&1; then
    echo "ok    checkov: $(grep -E '^Passed checks' "$out/checkov.log" || echo 'no summary')"
else
    cat "$out/checkov.log" >&2
    echo "FAIL  checkov" >&2
    status=1
fi
exit "$status"
