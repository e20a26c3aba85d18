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

# --- project tags and projects acting as domains --------------------------------------------
os project create --tag blue --tag green tagged >/dev/null || fail "project create --tag"
os project list --tags blue -f value -c Name | grep -x tagged >/dev/null || fail "project list --tags"
os project list --tags-any red,green -f value -c Name | grep -x tagged >/dev/null || fail "project list --tags-any"
os project list --not-tags blue -f value -c Name | grep -x tagged >/dev/null && fail "project list --not-tags kept the project"
os project list --not-tags-any red -f value -c Name | grep -x tagged >/dev/null || fail "project list --not-tags-any"
os project set --tag red tagged || fail "project set --tag"
[ "$(os project show tagged -f json | python3 -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin)["tags"])))')" = blue,green,red ] || fail "project set --tag did not add red"
ok "project create --tag, project list --tags/--tags-any/--not-tags/--not-tags-any, project set --tag"
tagged_id=$(os project show tagged -f value -c id)
[ "$(http PUT "/projects/$tagged_id/tags/yellow" "$admin_token" | cut -c1-3)" = 201 ] || fail "PUT a project tag"
[ "$(http GET "/projects/$tagged_id/tags/yellow" "$admin_token" | cut -c1-3)" = 204 ] || fail "check a project tag"
[ "$(http DELETE "/projects/$tagged_id/tags/blue" "$admin_token" | cut -c1-3)" = 204 ] || fail "DELETE a project tag"
expect_error 404 "$(http GET "/projects/$tagged_id/tags/blue" "$admin_token")" "checking a removed project tag"
expect_error 400 "$(http PUT "/projects/$tagged_id/tags" "$admin_token" '{"tags": ["a,b"]}')" "a tag with a comma"
[ "$(http GET "/projects/$tagged_id/tags" "$admin_token")" = '200 {"tags":["green","red","yellow"]}' ] || fail "GET project tags: $(http GET "/projects/$tagged_id/tags" "$admin_token")"
listed=$(http GET "/projects?name=tagged" "$admin_token" | cut -c5- | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["projects"][0], sort_keys=True))')
shown=$(http GET "/projects/$tagged_id" "$admin_token" | cut -c5- | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["project"], sort_keys=True))')
[ "$listed" = "$shown" ] || fail "a listed project differs from GET on it: $listed vs $shown"
ok "project tag routes; a listed project has the same fields as GET on it"
http GET "/projects?is_domain=true" "$admin_token" | cut -c5- | python3 -c '
import json, sys
projects = json.load(sys.stdin)["projects"]
assert any(p["id"] == "default" and p["is_domain"] is True and p["domain_id"] is None for p in projects), projects' || fail "projects?is_domain=true"
http GET /projects "$admin_token" | cut -c5- | python3 -c '
import json, sys
assert not any(p["is_domain"] for p in json.load(sys.stdin)["projects"])' || fail "a plain project list shows domains"
[ "$(http POST /projects "$admin_token" '{"project": {"name": "project-domain", "is_domain": true}}' | cut -c1-3)" = 201 ] || fail "creating a project acting as a domain"
os domain show project-domain >/dev/null || fail "a project created with is_domain is not a domain"
ok "projects acting as domains: listed with is_domain=true, created with is_domain, shown as domains"

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
os role list -f value -c Name | sort | tr '\n' ' ' | grep "admin auditor manager member reader service" >/dev/null || fail "role list"
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

# --- domain-specific roles -------------------------------------------------------------------
os role create --domain clidom clidom-role >/dev/null || fail "role create --domain"
clidom_role_id=$(os role show --domain clidom clidom-role -f value -c id)
member_role_id=$(os role show member -f value -c id)
# (The CLI's role add exits 0 even when refused: the refusals are checked on the API.)
expect_error 403 "$(http PUT "/projects/$demo_id/users/$(os user show alice -f value -c id)/roles/$clidom_role_id" "$admin_token")" "a domain role granted on a project of another domain"
expect_error 403 "$(http PUT "/roles/$member_role_id/implies/$clidom_role_id" "$admin_token")" "a global role implying a domain role"
implied=$(http PUT "/roles/$clidom_role_id/implies/$(os role show reader -f value -c id)" "$admin_token")
[ "${implied%% *}" = 201 ] || fail "a domain role implying a global role: $implied"
os role add --user bob --project other --role-domain clidom clidom-role || fail "role add of a domain role in its domain"
bob_other=$(curl -s -H 'Content-Type: application/json' --data-binary \
  "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": \"bob\", \"domain\": {\"id\": \"default\"}, \"password\": \"bob-pw\"}}}, \"scope\": {\"project\": {\"id\": \"$other_id\"}}}}" "$V3/auth/tokens")
echo "$bob_other" | python3 -c '
import json, sys
names = {r["name"] for r in json.load(sys.stdin)["token"]["roles"]}
assert names == {"reader"}, names' || fail "a domain role's token roles: $bob_other"
os role remove --user bob --project other --role-domain clidom clidom-role || fail "role remove of a domain role"
ok "domain roles: granted only in their domain, imply global roles (never the reverse), reach tokens only through what they imply"

# --- inherited role assignments (OS-INHERIT) ----------------------------------------------
os project create --parent demo demo-child >/dev/null || fail "project create --parent"
os role add --inherited --user alice --project demo auditor || fail "role add --inherited on a project"
os role add --inherited --user bob --domain clidom auditor || fail "role add --inherited on a domain"
os role assignment list --effective --names -f json > /tmp/petrel-cli-inh.$$ || fail "role assignment list --effective"
python3 - /tmp/petrel-cli-inh.$$ <<'PY' || fail "inherited roles in role assignment list --effective --names"
import json, sys
rows = json.load(open(sys.argv[1]))
have = {(r["Role"], r["User"], r["Project"]) for r in rows}
assert ("auditor", "alice@Default", "demo-child@Default") in have, sorted(have)
assert ("auditor", "bob@Default", "other@clidom") in have, sorted(have)
# Inherited by the projects below, not held on the target itself.
assert ("auditor", "alice@Default", "demo@Default") not in have, sorted(have)
PY
os role assignment list --user alice --project demo --names -f json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
assert any(r["Role"] == "auditor" and r["Inherited"] for r in rows), rows' || fail "the inherited assignment is not listed as inherited"
rm -f /tmp/petrel-cli-inh.$$
child_roles=$(os_as alice alice-pw demo-child token issue -f value -c project_id) || fail "alice cannot scope to demo-child through the inherited role"
ok "role add --inherited: effective on the child project (and on the domain's projects), listed as inherited, usable in a token"
os role remove --inherited --user alice --project demo auditor || fail "role remove --inherited"
os_as alice alice-pw demo-child token issue >/dev/null 2>&1 && fail "alice still scopes to demo-child after the inherited role was removed"
os role remove --inherited --user bob --domain clidom auditor || fail "role remove --inherited on a domain"
ok "role remove --inherited"

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
limited=$(os_as alice alice-pw2 demo application credential create \
  --access-rules '[{"service": "compute", "method": "GET", "path": "/v2.1/servers"}]' limited-cred -f json) || fail "application credential create --access-rules"
limited_id=$(echo "$limited" | field ID)
limited_secret=$(echo "$limited" | field Secret)
rule_id=$(os_as alice alice-pw2 demo access rule list -f value -c ID) || fail "access rule list"
[ -n "$rule_id" ] || fail "access rule list is empty"
[ "$(os_as alice alice-pw2 demo access rule show "$rule_id" -f value -c path)" = /v2.1/servers ] || fail "access rule show"
limited_token=$(env OS_CLIENT_CONFIG_FILE="$no_clouds" "$OSC" --os-auth-url "$V3" --os-identity-api-version 3 \
  --os-auth-type v3applicationcredential --os-application-credential-id "$limited_id" \
  --os-application-credential-secret "$limited_secret" token issue -f value -c id) || fail "a token from the limited credential"
call() { curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "X-Auth-Token: $limited_token" "$PETREL_URL$2"; }
[ "$(call GET /compute/v2.1/servers)" = 200 ] || fail "the limited credential cannot GET /compute/v2.1/servers: $(call GET /compute/v2.1/servers)"
for refused in "GET /compute/v2.1/flavors" "GET /compute/v2.1/servers/detail" "DELETE /compute/v2.1/servers" "GET /v3/users" "GET /image/v2/images" "GET /networking/v2.0/networks"; do
  [ "$(call $refused)" = 401 ] || fail "the limited credential made $refused: $(call $refused)"
done
ok "application credential create --access-rules: GET /compute/v2.1/servers answers, every other call is a 401"
os_as alice alice-pw2 demo access rule delete "$rule_id" >/dev/null 2>&1 && fail "an access rule in use was deleted"
os_as alice alice-pw2 demo application credential delete limited-cred || fail "application credential delete limited-cred"
os_as alice alice-pw2 demo access rule delete "$rule_id" || fail "access rule delete"
ok "access rule list/show/delete (refused while a credential uses it)"

# --- credentials ----------------------------------------------------------------------------
# (Users, projects and roles by id: a member may not list them, so the CLI cannot look names up.)
alice_id=$(os user show alice -f value -c id)
bob_id=$(os user show bob -f value -c id)
member_id=$(os role show member -f value -c id)
admin_role_id=$(os role show admin -f value -c id)
cred_id=$(os_as alice alice-pw2 demo credential create --type cert --project "$demo_id" "$alice_id" cert-blob-1 -f value -c id) || fail "credential create"
[ "$(os credential show "$cred_id" -f value -c blob)" = cert-blob-1 ] || fail "credential show (admin)"
os_as alice alice-pw2 demo credential list -f value -c ID | grep -x "$cred_id" >/dev/null || fail "credential list (owner)"
os_as alice alice-pw2 demo credential set --user "$alice_id" --type cert --data cert-blob-2 "$cred_id" || fail "credential set"
[ "$(os_as alice alice-pw2 demo credential show "$cred_id" -f value -c blob)" = cert-blob-2 ] || fail "credential set did not change the blob"
ok "credential create/list/show/set"
bob_token=$(password_token bob bob-pw demo)
[ -n "$bob_token" ] || fail "bob cannot log in"
expect_error 403 "$(http GET "/credentials/$cred_id" "$bob_token")" "another user reading a credential"
expect_error 403 "$(http PATCH "/credentials/$cred_id" "$bob_token" '{"credential": {"blob": "x"}}')" "another user changing a credential"
[ "$(http GET /credentials "$bob_token" | python3 -c 'import json,sys; s=sys.stdin.read(); print(len(json.loads(s[4:])["credentials"]))')" = 0 ] || fail "bob lists alice's credential"
ok "another user's list leaves the credential out"
expect_error 400 "$(http POST /credentials "$admin_token" '{"credential": {"type": "ec2", "user_id": "x", "blob": "not json", "project_id": "p"}}')" "an EC2 credential whose blob is not JSON"
expect_error 400 "$(http POST /credentials "$admin_token" '{"credential": {"type": "cert", "blob": 5}}')" "a credential without a user"
os_as alice alice-pw2 demo credential delete "$cred_id" || fail "credential delete"
os credential show "$cred_id" >/dev/null 2>&1 && fail "a deleted credential is still shown"
ok "credential delete"

# --- EC2 credentials and /v3/ec2tokens ---------------------------------------------------------
ec2=$(os_as alice alice-pw2 demo ec2 credentials create -f json) || fail "ec2 credentials create"
access=$(echo "$ec2" | field access)
ec2_secret=$(echo "$ec2" | field secret)
[ "$(echo "$ec2" | field project_id)" = "$demo_id" ] || fail "the EC2 credential is not for demo: $ec2"
os_as alice alice-pw2 demo ec2 credentials list -f value -c Access | grep -x "$access" >/dev/null || fail "ec2 credentials list"
[ "$(os_as alice alice-pw2 demo ec2 credentials show "$access" -f value -c secret)" = "$ec2_secret" ] || fail "ec2 credentials show"
ok "ec2 credentials create/list/show"
# ec2_request VERSION ACCESS SECRET: a request signed as an EC2 client signs it, as /v3/ec2tokens takes it.
ec2_request() {
  python3 - "$@" <<'PY'
import base64, datetime, hashlib, hmac, json, sys, urllib.parse
version, access, secret = sys.argv[1:]
now = datetime.datetime.now(datetime.timezone.utc)
host, verb, path = "ec2.example.test:8773", "GET", "/"
def quote(s): return urllib.parse.quote(s, safe="-_~")
def canonical(params): return "&".join(quote(k) + "=" + quote(params[k]) for k in sorted(params))
if version == "2":
    params = {"Action": "DescribeInstances", "AWSAccessKeyId": access, "SignatureVersion": "2",
              "SignatureMethod": "HmacSHA256", "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    text = "%s\n%s\n%s\n%s" % (verb, host, path, canonical(params))
    signature = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()
    headers, body_hash = {}, ""
else:
    params = {"Action": "DescribeInstances"}
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"Host": host, "X-Amz-Date": stamp}
    body_hash = hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-date"
    request = "\n".join([verb, path, canonical(params), "host:%s\nx-amz-date:%s\n" % (host, stamp), signed, body_hash])
    scope = "%s/RegionOne/ec2/aws4_request" % day
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in [day, "RegionOne", "ec2", "aws4_request"]:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (access, scope, signed, signature)
print(json.dumps({"credentials": {"access": access, "signature": signature, "host": host, "verb": verb, "path": path,
                                  "params": params, "headers": headers, "body_hash": body_hash}}))
PY
}
for version in 2 4; do
  result=$(http POST /ec2tokens "" "$(ec2_request $version "$access" "$ec2_secret")")
  [ "${result%% *}" = 200 ] || fail "ec2tokens (signature v$version): $result"
  echo "${result#* }" | python3 -c '
import json, sys
t = json.load(sys.stdin)["token"]
assert t["project"]["id"] == sys.argv[1] and t["user"]["name"] == "alice" and t["methods"] == ["ec2credential"], t
assert any(r["name"] == "member" for r in t["roles"]) and t["catalog"], t' "$demo_id" || fail "ec2tokens v$version token body"
  ok "ec2tokens: a request signed with signature v$version → a demo-scoped token for alice"
  expect_error 401 "$(http POST /ec2tokens "" "$(ec2_request $version "$access" wrong-secret)")" "ec2tokens with a wrong secret (v$version)"
done
expect_error 404 "$(http POST /ec2tokens "" "$(ec2_request 4 unknown-access "$ec2_secret")")" "ec2tokens with an unknown access key"
os_as alice alice-pw2 demo ec2 credentials delete "$access" || fail "ec2 credentials delete"
expect_error 404 "$(http POST /ec2tokens "" "$(ec2_request 4 "$access" "$ec2_secret")")" "ec2tokens with a deleted credential"
ok "ec2 credentials delete"

# --- trusts -----------------------------------------------------------------------------------
trust=$(os_as alice alice-pw2 demo trust create --project "$demo_id" --role "$member_id" --impersonate "$alice_id" "$bob_id" -f json) || fail "trust create"
trust_id=$(echo "$trust" | field id)
os_as alice alice-pw2 demo trust list --trustor "$alice_id" -f value -c ID | grep -x "$trust_id" >/dev/null || fail "trust list"
[ "$(os_as alice alice-pw2 demo trust show "$trust_id" -f value -c trustee_user_id)" = "$bob_id" ] || fail "trust show"
ok "trust create/list/show"
os_as alice alice-pw2 demo trust create --project "$demo_id" --role "$admin_role_id" "$alice_id" "$bob_id" >/dev/null 2>&1 && fail "a trust of a role the trustor lacks"
ok "a trust of a role the trustor does not have is refused"
trust_token=$(env OS_CLIENT_CONFIG_FILE="$no_clouds" "$OSC" --os-auth-url "$V3" --os-identity-api-version 3 --os-username bob \
  --os-password bob-pw --os-user-domain-name Default --os-trust-id "$trust_id" token issue -f json) || fail "token issue --os-trust-id"
[ "$(echo "$trust_token" | field project_id)" = "$demo_id" ] || fail "the trust token is not scoped to demo: $trust_token"
[ "$(echo "$trust_token" | field user_id)" = "$alice_id" ] || fail "an impersonating trust token is not alice's: $trust_token"
trust_token_id=$(echo "$trust_token" | field id)
http GET /auth/tokens "$admin_token" >/dev/null
trust_body=$(curl -s -H "X-Auth-Token: $admin_token" -H "X-Subject-Token: $trust_token_id" "$V3/auth/tokens")
echo "$trust_body" | python3 -c '
import json, sys
t = json.load(sys.stdin)["token"]
trust = t["OS-TRUST:trust"]
assert trust["id"] == sys.argv[1] and trust["impersonation"] is True and trust["trustee_user"]["id"] == sys.argv[2], t
assert {r["name"] for r in t["roles"]} == {"member", "reader"}, t["roles"]' "$trust_id" "$bob_id" || fail "trust token body: $trust_body"
ok "token issue --os-trust-id: a demo-scoped token with the trust's roles and OS-TRUST:trust"
expect_error 403 "$(http DELETE "/OS-TRUST/trusts/$trust_id" "$bob_token")" "the trustee deleting the trust"
os_as alice alice-pw2 demo trust delete "$trust_id" || fail "trust delete"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $admin_token" -H "X-Subject-Token: $trust_token_id" "$V3/auth/tokens")
[ "$status" = 404 ] || fail "a token of a deleted trust validates with $status"
ok "trust delete: its tokens stop validating"

# --- multi-factor authentication (TOTP, rules, receipts) ----------------------------------------
os user create --password carol-pw carol >/dev/null || fail "user create carol"
os role add --user carol --project demo member || fail "role add carol"
carol_id=$(os user show carol -f value -c id)
totp_secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
os credential create --type totp "$carol_id" "$totp_secret" >/dev/null || fail "credential create --type totp"
os user set --enable-multi-factor-auth --multi-factor-auth-rule password,totp carol || fail "user set --multi-factor-auth-rule"
os user show carol -f json | python3 -c '
import json, sys
o = json.load(sys.stdin)["options"]
assert o["multi_factor_auth_enabled"] is True and o["multi_factor_auth_rules"] == [["password", "totp"]], o' || fail "the user's options do not show the rules"
ok "user set --enable-multi-factor-auth --multi-factor-auth-rule password,totp: stored and shown"
totp_code() { python3 - "$totp_secret" "${1:-0}" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1])
counter = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
offset = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7fffffff) % 1000000))
PY
}
mfa_body() { # mfa_body METHODS PASSCODE
  python3 -c '
import json, sys
methods, passcode = sys.argv[1].split(","), sys.argv[2]
user = {"name": "carol", "domain": {"id": "default"}}
identity = {"methods": methods}
if "password" in methods: identity["password"] = {"user": dict(user, password="carol-pw")}
if "totp" in methods: identity["totp"] = {"user": dict(user, passcode=passcode)}
print(json.dumps({"auth": {"identity": identity, "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}))' "$1" "$2"
}
headers=$(mktemp /tmp/petrel-cli-h.XXXXXX)
status=$(curl -s -D "$headers" -o /tmp/petrel-cli-r.$$ -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$(mfa_body password x)" "$V3/auth/tokens")
[ "$status" = 401 ] || fail "the password alone gave $status, not 401"
receipt=$(sed -n 's/^[Oo]penstack-[Aa]uth-[Rr]eceipt: *//p' "$headers" | tr -d '\r')
[ -n "$receipt" ] || fail "no Openstack-Auth-Receipt header: $(cat "$headers")"
python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))
assert b["receipt"]["methods"] == ["password"] and b["required_auth_methods"] == [["password", "totp"]], b' /tmp/petrel-cli-r.$$ || fail "receipt body: $(cat /tmp/petrel-cli-r.$$)"
ok "the password alone → 401 with a receipt (Openstack-Auth-Receipt) and the required methods"
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H "Openstack-Auth-Receipt: $receipt" --data-binary "$(mfa_body totp "$(totp_code)")" "$V3/auth/tokens")
[ "$status" = 201 ] || fail "receipt + TOTP gave $status"
ok "the receipt plus the current TOTP code → a token"
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$(mfa_body password,totp "$(totp_code)")" "$V3/auth/tokens")
[ "$status" = 201 ] || fail "password + TOTP in one request gave $status"
wrong=$(totp_code 5)
expect_error 401 "$(http POST /auth/tokens "" "$(mfa_body password,totp "$wrong")")" "password + a wrong TOTP code"
ok "password + the current TOTP code in one request → a token"
env OS_CLIENT_CONFIG_FILE="$no_clouds" "$OSC" --os-auth-url "$V3" --os-identity-api-version 3 --os-auth-type v3multifactor \
  --os-auth-methods v3password,v3totp --os-username carol --os-password carol-pw --os-passcode "$(totp_code)" \
  --os-user-domain-name Default --os-project-name demo --os-project-domain-name Default token issue >/dev/null || fail "the CLI's v3multifactor"
env OS_CLIENT_CONFIG_FILE="$no_clouds" "$OSC" --os-auth-url "$V3" --os-identity-api-version 3 --os-username carol --os-password carol-pw \
  --os-user-domain-name Default --os-project-name demo --os-project-domain-name Default token issue >/dev/null 2>&1 && fail "the CLI got a token with the password alone"
ok "openstack --os-auth-type v3multifactor (password + totp) gets a token; the password alone does not"
rm -f "$headers" /tmp/petrel-cli-r.$$
os user set --enable-lock-password alice || fail "user set --enable-lock-password"
os_as alice alice-pw2 demo user password set --password alice-pw3 --original-password alice-pw2 >/dev/null 2>&1 && fail "a user with lock_password changed their password"
ok "lock_password: the user cannot change their own password"

echo "all $checks CLI checks passed"
