#!/usr/bin/env bash
# Stored policies, endpoint groups and project endpoint filters with the unmodified `openstack`
# CLI, and domain-specific configuration with curl (the CLI has no command for it), against a
# freshly bootstrapped petrel-controller. Driven by KeystoneCLITests; needs: OSC (path of
# `openstack`), OS_CLIENT_CONFIG_FILE with a cloud `petrel` (admin, project-scoped), PETREL_URL.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${PETREL_URL:?}"
V3=$PETREL_URL/v3
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
work=$(mktemp -d /tmp/petrel-ext-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "clouds: {}" > "$work/no-clouds.yaml"
# os_as USER PASSWORD PROJECT ARGS…: the CLI as another user, scoped to PROJECT.
os_as() {
  local user=$1 password=$2 project=$3; shift 3
  env OS_CLIENT_CONFIG_FILE="$work/no-clouds.yaml" "$OSC" --os-auth-url "$V3" --os-identity-api-version 3 --os-username "$user" \
    --os-password "$password" --os-project-name "$project" --os-user-domain-name Default --os-project-domain-name Default "$@"
}
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]])' "$1"; }
# http METHOD PATH TOKEN [BODY]: prints "STATUS BODY".
http() {
  local method=$1 path=$2 token=$3 body=${4:-}
  local args=(-s -o "$work/body" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' -H "X-Auth-Token: $token")
  [ -n "$body" ] && args+=(--data-binary "$body")
  local status
  status=$(curl "${args[@]}" "$V3$path")
  echo "$status $(cat "$work/body")"
}
# expect STATUS "RESULT" WHAT [PYTHON-CHECK]: the status, and the body passing the check (`b`: the JSON body).
expect() {
  local want=$1 result=$2 what=$3 check=${4:-True}
  local status=${result%% *} body=${result#* }
  [ "$status" = "$want" ] || fail "$what: expected $want, got $result"
  if [ -n "$body" ]; then
    echo "$body" | python3 -c "
import json, sys
b = json.load(sys.stdin)
assert $check, b" || fail "$what: $body"
  fi
  ok "$what → $want"
}

admin_token=$(os token issue -f value -c id) || fail "token issue"

# --- policies -------------------------------------------------------------------------
echo '{"foobar_user": "role:compute-user"}' > "$work/rules.json"
policy=$(os policy create --type application/json "$work/rules.json" -f json) || fail "policy create"
policy_id=$(echo "$policy" | field id)
[ "$(echo "$policy" | field type)" = application/json ] || fail "policy create: $policy"
echo "$policy" | python3 -c 'import json,sys; p=json.load(sys.stdin); assert "role:compute-user" in p["rules"], p' || fail "policy blob: $policy"
os policy list -f json | python3 -c 'import json,sys; l=json.load(sys.stdin); assert [p for p in l if p["ID"]==sys.argv[1]], l' "$policy_id" ||
  fail "policy list"
echo '{"foobar_user": "role:admin"}' > "$work/rules2.json"
os policy set --type text/plain --rules "$work/rules2.json" "$policy_id" || fail "policy set"
shown=$(os policy show "$policy_id" -f json) || fail "policy show"
[ "$(echo "$shown" | field type)" = text/plain ] && echo "$shown" | grep -q 'role:admin' || fail "policy show after set: $shown"
ok "policy create/list/show/set"
expect 200 "$(http GET "/policies?type=text/plain" "$admin_token")" "policy list filtered by type" \
  "[p['id'] for p in b['policies']] == ['$policy_id']"
expect 200 "$(http GET "/policies?type=application/xml" "$admin_token")" "policy list of another type" "b['policies'] == []"
expect 400 "$(http POST /policies "$admin_token" '{"policy": {"type": "application/json"}}')" "policy create without a blob" "b['error']['code'] == 400"

# --- endpoint policy ------------------------------------------------------------------
service_id=$(os service create --name widgets widget -f value -c id) || fail "service create"
public_id=$(os endpoint create --region RegionOne widget public http://widgets.example:8080/public -f value -c id) || fail "endpoint create"
internal_id=$(os endpoint create --region RegionOne widget internal http://widgets.example:8080/internal -f value -c id) || fail "endpoint create"
expect 204 "$(http PUT "/policies/$policy_id/OS-ENDPOINT-POLICY/services/$service_id/regions/RegionOne" "$admin_token")" \
  "policy associated with a service in a region"
expect 200 "$(http GET "/endpoints/$public_id/OS-ENDPOINT-POLICY/policy" "$admin_token")" "the endpoint's policy" \
  "b['policy']['id'] == '$policy_id'"
expect 200 "$(http GET "/policies/$policy_id/OS-ENDPOINT-POLICY/endpoints" "$admin_token")" "the policy's endpoints" \
  "sorted(e['id'] for e in b['endpoints']) == sorted(['$public_id', '$internal_id'])"

# --- endpoint groups and project endpoint filters --------------------------------------
os project create filtered >/dev/null || fail "project create filtered"
os user create --password carol-pw carol >/dev/null || fail "user create carol"
os role add --user carol --project filtered member || fail "role add"
everything=$(os_as carol carol-pw filtered catalog list -f json) || fail "catalog list before any filter"
echo "$everything" | grep -q identity && echo "$everything" | grep -q widgets.example:8080/public ||
  fail "an unfiltered project sees the whole catalog: $everything"
ok "catalog list: an unfiltered project sees everything"

os endpoint add project "$internal_id" filtered || fail "endpoint add project"
os endpoint list --project filtered -f json | python3 -c 'import json,sys; l=json.load(sys.stdin); assert [e["ID"] for e in l]==[sys.argv[1]], l' \
  "$internal_id" || fail "endpoint list --project"
os endpoint list --endpoint "$internal_id" -f json | grep filtered >/dev/null || fail "endpoint list --endpoint"
filtered=$(os_as carol carol-pw filtered catalog list -f json) || fail "catalog list of the filtered project"
echo "$filtered" | grep -q widgets.example:8080/internal || fail "the associated endpoint is missing: $filtered"
if echo "$filtered" | grep -q -e widgets.example:8080/public -e identity; then fail "the filtered catalog shows more: $filtered"; fi
ok "endpoint add project: the project's catalog shows only that endpoint"
admin_catalog=$(os catalog list -f json) || fail "admin catalog list"
echo "$admin_catalog" | grep -q widgets.example:8080/public && echo "$admin_catalog" | grep -q identity ||
  fail "another project's catalog lost endpoints: $admin_catalog"
ok "catalog list: other projects still see everything"
expect 409 "$(http PUT "/OS-EP-FILTER/projects/$(os project show filtered -f value -c id)/endpoints/$internal_id" "$admin_token")" \
  "the same endpoint twice" "b['error']['code'] == 409"

printf '{"service_id": "%s", "interface": "public"}' "$service_id" > "$work/filters.json"
group=$(os endpoint group create --description "public widgets" widgets-public "$work/filters.json" -f json) || fail "endpoint group create"
group_id=$(echo "$group" | field id)
echo "$group" | grep -q '"interface": "public"' || fail "endpoint group create: $group"
os endpoint group list -f json | grep widgets-public >/dev/null || fail "endpoint group list"
os endpoint group show widgets-public -f json | grep "$group_id" >/dev/null || fail "endpoint group show by name"
printf '{"service_id": "%s"}' "$service_id" > "$work/filters2.json"
os endpoint group set --name widgets --description "all widgets" --filters "$work/filters2.json" "$group_id" || fail "endpoint group set"
shown=$(os endpoint group show "$group_id" -f json) || fail "endpoint group show"
[ "$(echo "$shown" | field name)" = widgets ] && echo "$shown" | grep -q "all widgets" || fail "endpoint group set: $shown"
ok "endpoint group create/list/show/set"
os endpoint group add project widgets filtered || fail "endpoint group add project"
os endpoint group list --endpointgroup widgets -f json | grep filtered >/dev/null || fail "endpoint group list --endpointgroup"
os endpoint group list --project filtered -f json | grep widgets >/dev/null || fail "endpoint group list --project"
grouped=$(os_as carol carol-pw filtered catalog list -f json) || fail "catalog list with the group"
echo "$grouped" | grep -q widgets.example:8080/public && echo "$grouped" | grep -q widgets.example:8080/internal ||
  fail "the group's endpoints are missing: $grouped"
if echo "$grouped" | grep -q identity; then fail "the grouped catalog shows more: $grouped"; fi
ok "endpoint group add project: the group's endpoints join the project's catalog"
os endpoint group remove project widgets filtered || fail "endpoint group remove project"
os endpoint remove project "$internal_id" filtered || fail "endpoint remove project"
again=$(os_as carol carol-pw filtered catalog list -f json) || fail "catalog list after removal"
echo "$again" | grep -q identity || fail "the project should see everything again: $again"
ok "endpoint group remove project, endpoint remove project: the whole catalog again"
os endpoint group delete widgets || fail "endpoint group delete"
if os endpoint group show "$group_id" >/dev/null 2>&1; then fail "the endpoint group is still there"; fi
ok "endpoint group delete"

# --- not for members --------------------------------------------------------------------
if os_as carol carol-pw filtered policy list >/dev/null 2>&1; then fail "a member listed policies"; fi
if os_as carol carol-pw filtered endpoint group list >/dev/null 2>&1; then fail "a member listed endpoint groups"; fi
carol_token=$(os_as carol carol-pw filtered token issue -f value -c id) || fail "carol's token"
expect 403 "$(http GET /domains/default/config "$carol_token")" "a member reading a domain's configuration" "b['error']['code'] == 403"
ok "policy list, endpoint group list: refused to a member"
os policy delete "$policy_id" || fail "policy delete"
if os policy show "$policy_id" >/dev/null 2>&1; then fail "the policy is still there"; fi
expect 404 "$(http GET "/endpoints/$public_id/OS-ENDPOINT-POLICY/policy" "$admin_token")" "no policy once it is deleted" \
  "b['error']['message'] == 'No policy is associated with endpoint $public_id.'"
ok "policy delete"

# --- domain-specific configuration ------------------------------------------------------
os domain create ldapdom >/dev/null || fail "domain create"
domain_id=$(os domain show ldapdom -f value -c id) || fail "domain show"
config="/domains/$domain_id/config"
expect 404 "$(http GET "$config" "$admin_token")" "no configuration yet"
expect 201 "$(http PUT "$config" "$admin_token" '{"config": {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=my_new_root,dc=org", "password": "s3cret"}}}')" \
  "domain config create" "b == {'config': {'identity': {'driver': 'ldap'}, 'ldap': {'url': 'ldap://myldap.com:389/', 'user_tree_dn': 'ou=Users,dc=my_new_root,dc=org'}}}"
expect 200 "$(http GET "$config/ldap/url" "$admin_token")" "domain config option" "b == {'config': {'url': 'ldap://myldap.com:389/'}}"
expect 404 "$(http GET "$config/ldap/password" "$admin_token")" "the password is never shown"
expect 200 "$(http PATCH "$config/ldap" "$admin_token" '{"config": {"ldap": {"url": "http://myldap/my_new_root"}}}')" \
  "domain config group update" "b['config']['ldap']['url'] == 'http://myldap/my_new_root' and b['config']['identity'] == {'driver': 'ldap'}"
expect 403 "$(http PUT "$config" "$admin_token" '{"config": {"ldap": {"hostname": "x"}}}')" "an option Keystone does not know" \
  "b['error']['message'] == 'Invalid domain specific configuration: Option hostname in group ldap is not supported for domain specific configurations.'"
expect 400 "$(http PUT "$config" "$admin_token" '{"config": "ldap"}')" "a configuration that is not an object"
expect 204 "$(http DELETE "$config/ldap/user_tree_dn" "$admin_token")" "domain config option delete"
expect 200 "$(http GET "$config" "$admin_token")" "domain config after the changes" \
  "b == {'config': {'identity': {'driver': 'ldap'}, 'ldap': {'url': 'http://myldap/my_new_root'}}}"
expect 200 "$(http GET /domains/config/default "$admin_token")" "the default configuration" \
  "b['config']['identity']['driver'] == 'sql' and b['config']['ldap']['url'] == 'ldap://localhost' and 'password' not in b['config']['ldap']"
expect 200 "$(http GET /domains/config/identity/driver/default "$admin_token")" "one default option" "b == {'config': {'driver': 'sql'}}"
expect 204 "$(http DELETE "$config" "$admin_token")" "domain config delete"
expect 404 "$(http GET "$config" "$admin_token")" "no configuration after the delete"

echo "all $checks extension CLI checks passed"
