#!/usr/bin/env bash
# The identity acceptance run: the unmodified `openstack` CLI (and curl for the exact status
# codes and error bodies) against a freshly bootstrapped petrel-controller.
# Driven by KeystoneCLITests; needs: OSC (path of `openstack`), OS_CLIENT_CONFIG_FILE with a
# cloud `petrel` (admin, project-scoped), PETREL_URL (base URL), ADMIN_PASSWORD,
# LOCKOUT_ATTEMPTS and LOCKOUT_DURATION as configured.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${PETREL_URL:?}" "${ADMIN_PASSWORD:?}" "${LOCKOUT_ATTEMPTS:?}" "${LOCKOUT_DURATION:?}"
V3=$PETREL_URL/v3
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
# Runs without any cloud from a clouds.yaml (openstacksdk would otherwise pick a lone cloud by itself).
no_clouds=$(mktemp /tmp/petrel-cli-clouds.XXXXXX)
echo "clouds: {}" > "$no_clouds"
trap 'rm -f "$no_clouds"' EXIT
# os_as USER PASSWORD PROJECT ARGS…: the CLI as another user, scoped to PROJECT.
os_as() {
  local user=$1 password=$2 project=$3; shift 3
  env OS_CLIENT_CONFIG_FILE="$no_clouds" "$OSC" --os-auth-url "$V3" --os-identity-api-version 3 --os-username "$user" \
    --os-password "$password" --os-project-name "$project" --os-user-domain-name Default --os-project-domain-name Default "$@"
}
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]])' "$1"; }
# http METHOD PATH TOKEN [BODY]: prints "STATUS BODY".
http() {
  local method=$1 path=$2 token=$3 body=${4:-}
  local args=(-s -o /tmp/petrel-cli-body.$$ -w '%{http_code}' -X "$method" -H 'Content-Type: application/json')
  [ -n "$token" ] && args+=(-H "X-Auth-Token: $token")
  [ -n "$body" ] && args+=(--data-binary "$body")
  local status
  status=$(curl "${args[@]}" "$V3$path")
  echo "$status $(cat /tmp/petrel-cli-body.$$)"
  rm -f /tmp/petrel-cli-body.$$
}
# expect_error STATUS "RESULT": the status and a Keystone error body with the same code.
expect_error() {
  local want=$1 result=$2 what=$3
  local status=${result%% *} body=${result#* }
  [ "$status" = "$want" ] || fail "$what: expected $want, got $result"
  echo "$body" | python3 -c '
import json, sys
e = json.load(sys.stdin)["error"]
assert e["code"] == int(sys.argv[1]) and e["title"] and e["message"], e' "$want" || fail "$what: not a Keystone error body: $body"
  ok "$what → $want with a Keystone error body"
}
password_token() { # password_token USER PASSWORD PROJECT → prints the token (or nothing)
  curl -s -D - -o /dev/null -H 'Content-Type: application/json' --data-binary "$(python3 -c '
import json, sys
user, password, project = sys.argv[1:]
print(json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}},
                           "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}))' "$1" "$2" "$3")" "$V3/auth/tokens" |
    sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *//p' | tr -d '\r'
}

# --- tokens and catalog -------------------------------------------------------------
admin_token=$(os token issue -f value -c id) || fail "token issue"
[ -n "$admin_token" ] || fail "token issue printed no token"
ok "token issue"
os catalog list -f json | python3 -c 'import json,sys; c=json.load(sys.stdin); assert any(s["Type"]=="identity" for s in c), c' || fail "catalog list"
ok "catalog list shows identity"
os endpoint list -f json | python3 -c '
import json, sys
e = json.load(sys.stdin)
assert {x["Interface"] for x in e if x["Service Type"] == "identity"} == {"public", "internal", "admin"}, e' || fail "endpoint list"
ok "endpoint list: identity public/internal/admin"
revoked=$(os token issue -f value -c id)
os token revoke "$revoked" || fail "token revoke"
result=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $admin_token" -H "X-Subject-Token: $revoked" "$V3/auth/tokens")
[ "$result" = 404 ] || fail "a revoked token validates with $result, not 404"
ok "token revoke: validating the revoked token → 404"
expect_error 401 "$(http GET /users "$revoked")" "using a revoked token"

# --- domains and projects -------------------------------------------------------------
os domain create --description "CLI test" clidom >/dev/null || fail "domain create"
os domain list -f value -c Name | grep -x clidom >/dev/null || fail "domain list lacks clidom"
ok "domain create/list"
os project create --description first demo >/dev/null || fail "project create demo"
os project create --domain clidom other >/dev/null || fail "project create other"
os project list -f value -c Name | sort | tr '\n' ' ' | grep "admin demo other" >/dev/null || fail "project list"
[ "$(os project show demo -f value -c description)" = first ] || fail "project show"
os project set --description second demo || fail "project set"
[ "$(os project show demo -f value -c description)" = second ] || fail "project set did not change the description"
os project create doomed >/dev/null && os project delete doomed || fail "project delete"
os project show doomed >/dev/null 2>&1 && fail "a deleted project is still shown"
ok "project create/list/show/set/delete"
demo_id=$(os project show demo -f value -c id)
other_id=$(os project show --domain clidom other -f value -c id)

# --- users, groups, roles -------------------------------------------------------------
os user create --password alice-pw --project demo --email alice@example.com alice >/dev/null || fail "user create alice"
os user create --password bob-pw bob >/dev/null || fail "user create bob"
os user list -f value -c Name | grep -x alice >/dev/null || fail "user list"
[ "$(os user show alice -f value -c email)" = alice@example.com ] || fail "user show"
os user set --email new@example.com alice || fail "user set"
[ "$(os user show alice -f value -c email)" = new@example.com ] || fail "user set did not change the email"
os user create --password x doomed >/dev/null && os user delete doomed || fail "user delete"
os user show doomed >/dev/null 2>&1 && fail "a deleted user is still shown"
ok "user create/list/show/set/delete"
os group create readers >/dev/null || fail "group create"
os group add user readers bob || fail "group add user"
os group contains user readers bob >/dev/null || fail "group contains user"
ok "group create, group add user"
os role create auditor >/dev/null || fail "role create"
os role list -f value -c Name | sort | tr '\n' ' ' | grep "admin auditor member reader" >/dev/null || fail "role list"
ok "role create/list"
os role add --user alice --project demo member || fail "role add member"
os role add --group readers --project demo reader || fail "role add to group"
os role add --user alice --project demo auditor || fail "role add auditor"
os role remove --user alice --project demo auditor || fail "role remove"
roles=$(os role assignment list --user alice --project demo --names -f value -c Role) || fail "role assignment list --user"
grep -x member <<<"$roles" >/dev/null || fail "alice's member role is not listed: $roles"
grep -x auditor <<<"$roles" >/dev/null && fail "role remove left the assignment: $roles"
ok "role add/remove"
os role assignment list --effective --names -f json > /tmp/petrel-cli-ra.$$ || fail "role assignment list"
python3 - /tmp/petrel-cli-ra.$$ <<'PY' || fail "role assignment list --effective --names"
import json, sys
rows = json.load(open(sys.argv[1]))
have = {(r["Role"], r["User"], r["Project"]) for r in rows}
# alice: member directly, reader implied; bob: reader through the group (shown as the user).
for want in [("member", "alice@Default", "demo@Default"), ("reader", "alice@Default", "demo@Default"),
             ("reader", "bob@Default", "demo@Default"), ("admin", "admin@Default", "admin@Default")]:
    assert want in have, (want, sorted(have))
assert not any(r["Group"] for r in rows), "effective assignments name users, not groups"
PY
rm -f /tmp/petrel-cli-ra.$$
ok "role assignment list --effective --names (implied roles, group members)"

# --- a member's view ----------------------------------------------------------------------
os_as alice alice-pw demo token issue -f value -c id >/dev/null || fail "alice cannot log in"
os_as alice alice-pw demo user create --password x mallory >/dev/null 2>&1 && fail "a member created a user"
alice_token=$(password_token alice alice-pw demo)
expect_error 403 "$(http POST /users "$alice_token" '{"user": {"name": "mallory"}}')" "a member creating a user"
expect_error 403 "$(http GET "/projects/$other_id" "$alice_token")" "a member reading another project"
expect_error 403 "$(http GET /projects "$alice_token")" "a member listing all projects"
[ "$(http GET "/projects/$demo_id" "$alice_token" | cut -c1-3)" = 200 ] || fail "a member cannot read their own project"
ok "a member reads their own project"
os role add --user alice --project other member || fail "role add on other"
other_scoped=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' --data-binary \
  "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": \"alice\", \"domain\": {\"id\": \"default\"}, \"password\": \"alice-pw\"}}}, \"scope\": {\"project\": {\"id\": \"$other_id\"}}}}" \
  "$V3/auth/tokens" | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *//p' | tr -d '\r')
[ -n "$other_scoped" ] || fail "alice cannot scope to other"
expect_error 403 "$(http GET "/projects/$demo_id" "$other_scoped")" "a token scoped to project A reading project B"

# --- passwords, disabling, lockout ----------------------------------------------------------
before=$(os user show alice -f json)
expect_error 401 "$(http POST /auth/tokens "" '{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "alice", "domain": {"id": "default"}, "password": "wrong"}}}}}')" "a wrong password"
after=$(os user show alice -f json)
[ "$before" = "$after" ] || fail "a wrong password changed the user: $before → $after"
ok "a wrong password changes nothing visible"
old_token=$(password_token alice alice-pw demo)
[ "$(http GET /auth/projects "$old_token" | cut -c1-3)" = 200 ] || fail "alice's token does not work before the change"
os_as alice alice-pw demo user password set --password alice-pw2 --original-password alice-pw || fail "user password set"
ok "user password set"
expect_error 401 "$(http GET /auth/projects "$old_token")" "a token issued before a password change"
[ -n "$(password_token alice alice-pw2 demo)" ] || fail "the new password does not work"
[ -z "$(password_token alice alice-pw demo)" ] || fail "the old password still works"
ok "the new password works and the old one does not"
os user set --disable bob || fail "user set --disable"
[ -z "$(password_token bob bob-pw demo)" ] || fail "a disabled user got a token"
expect_error 401 "$(http POST /auth/tokens "" '{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "bob", "domain": {"id": "default"}, "password": "bob-pw"}}}}}')" "a disabled user authenticating"
os user set --enable bob
for ((i = 0; i < LOCKOUT_ATTEMPTS; i++)); do password_token bob wrong demo >/dev/null; done
[ -z "$(password_token bob bob-pw demo)" ] || fail "not locked out after $LOCKOUT_ATTEMPTS failures"
ok "locked out after $LOCKOUT_ATTEMPTS failures, even with the right password"
sleep $((LOCKOUT_DURATION + 1))
[ -n "$(password_token bob bob-pw demo)" ] || fail "still locked out after $LOCKOUT_DURATION s"
ok "the lockout ends after $LOCKOUT_DURATION s"

# --- bad requests -------------------------------------------------------------------------
admin_token=$(os token issue -f value -c id)
expect_error 400 "$(http POST /users "$admin_token" '{"user": {"name": ')" "malformed JSON"
expect_error 400 "$(http POST /users "$admin_token" '{"user": {"email": "x@example.com"}}')" "a user without a name"
expect_error 400 "$(http POST /projects "$admin_token" '{"project": {"name": 42}}')" "a project name that is not a string"
expect_error 400 "$(http POST /auth/tokens "" '{"auth": {}}')" "auth without identity"
expect_error 400 "$(http POST /users "$admin_token" '[1, 2]')" "a body that is not an object"
python3 -c 'print("{\"user\": {\"name\": \"" + "x" * 200000 + "\"}}")' > /tmp/petrel-cli-big.$$
expect_error 413 "$(http POST /users "$admin_token" "@/tmp/petrel-cli-big.$$")" "an oversized body"
rm -f /tmp/petrel-cli-big.$$
users=$(os user list -f value -c Name) || fail "user list"
grep -x x <<<"$users" >/dev/null && fail "a refused request created a user"
expect_error 404 "$(http GET /users/nonexistent "$admin_token")" "an unknown user"
expect_error 409 "$(http POST /users "$admin_token" '{"user": {"name": "alice"}}')" "a duplicate user name"

# --- application credentials ------------------------------------------------------------------
credential=$(os_as alice alice-pw2 demo application credential create --description cli ci-cred -f json) || fail "application credential create"
credential_id=$(echo "$credential" | field ID)
secret=$(echo "$credential" | field Secret)
ok "application credential create"
app_auth=(env OS_CLIENT_CONFIG_FILE="$no_clouds" "$OSC" --os-auth-url "$V3" --os-identity-api-version 3
          --os-auth-type v3applicationcredential --os-application-credential-id "$credential_id"
          --os-application-credential-secret "$secret")
[ "$("${app_auth[@]}" token issue -f value -c project_id)" = "$demo_id" ] || fail "authenticating with the application credential"
ok "authenticating with the application credential (v3applicationcredential) gives a demo-scoped token"
os_as alice alice-pw2 demo application credential list -f value -c Name | grep -x ci-cred >/dev/null || fail "application credential list"
os_as alice alice-pw2 demo application credential delete ci-cred || fail "application credential delete"
"${app_auth[@]}" token issue >/dev/null 2>&1 && fail "a deleted application credential still authenticates"
ok "application credential list/delete; a deleted one no longer authenticates"

echo "all $checks CLI checks passed"
