import Foundation
import Logging
import SQLKit
import Store
import Synchronization

/// Settings of the identity service, from `[token]`, `[identity]`, `[security_compliance]`, `[api]`.
public struct IdentityOptions: Sendable {
    public var tokenExpiration: TimeInterval = 3600
    public var keyRepository: String
    public var maxActiveKeys = 3
    public var passwordCost = 12
    /// `[identity] max_password_length`: longer passwords are refused when set and never checked.
    public var maxPasswordLength = 4096
    public var lockout = LockoutPolicy(failureAttempts: 0, duration: 1800)
    /// How long a validated token's resolved contents are reused before the database is read
    /// again; changes made through this controller invalidate them at once, changes made
    /// through another one at its next refresh.
    public var validationCacheLifetime: TimeInterval = 60
    /// How often revocation events written by other controllers (and rotated keys) are picked up.
    public var refreshInterval: TimeInterval = 2
    /// `[token] allow_expired_window`: how long after expiry a user token still validates when a
    /// valid service token (`X-Service-Token`, with the service role) comes with it.
    public var allowExpiredWindow: TimeInterval = 172_800
    /// `[credential] key_repository`: the keys that encrypt credential blobs (nil: none set up).
    public var credentialKeyRepository: String?
    /// `[credential] auth_ttl`: how old (seconds) a signed EC2 request's timestamp may be.
    public var ec2AuthTTL: TimeInterval = 900
    public var passwordRules = PasswordRules()
    /// `[totp] included_previous_windows`: earlier 30 s steps whose passcodes still count.
    public var totpPreviousWindows = 1
    /// `[receipt] expiration`: seconds a multi-factor receipt stays usable.
    public var receiptExpiration: TimeInterval = 300

    public init(keyRepository: String) { self.keyRepository = keyRepository }
}

/// How a caller identifies a domain, user or project in a request.
public enum DomainReference: Sendable, Equatable {
    case id(String)
    case name(String)
}

public enum UserReference: Sendable, Equatable {
    case id(String)
    case name(String, domain: DomainReference)
}

public enum ProjectReference: Sendable, Equatable {
    case id(String)
    case name(String, domain: DomainReference)
}

public enum ApplicationCredentialReference: Sendable, Equatable {
    case id(String)
    case name(String, user: UserReference)
}

/// A `POST /v3/auth/tokens` request, parsed.
public struct AuthRequest: Sendable {
    public enum Method: Sendable {
        case password(UserReference, password: String)
        case token(String)
        case applicationCredential(ApplicationCredentialReference, secret: String)
        /// A TOTP passcode of the user (RFC 6238), checked against their `totp` credentials.
        case totp(UserReference, passcode: String)
    }

    public enum ScopeRequest: Sendable, Equatable {
        /// No scope given: the user's default project if they have a role there, else unscoped.
        case unspecified
        case unscoped
        case project(ProjectReference)
        case domain(DomainReference)
        case system
        /// `{"OS-TRUST:trust": {"id": …}}`: the trust's project, with the trust's roles.
        case trust(String)
    }

    public var method: Method
    /// Further methods of the same request (multi-factor: password and totp).
    public var additional: [Method] = []
    /// `Openstack-Auth-Receipt`: the methods an earlier, incomplete attempt already proved.
    public var receipt: String?
    public var scope: ScopeRequest

    public init(method: Method, scope: ScopeRequest, additional: [Method] = [], receipt: String? = nil) {
        self.method = method
        self.scope = scope
        self.additional = additional
        self.receipt = receipt
    }
}

/// A valid token, resolved: everything the token body shows and policy checks need.
public struct TokenInfo: Sendable {
    public struct Named: Sendable, Equatable {
        public let id: String
        public let name: String
    }

    public struct Project: Sendable {
        public let id: String
        public let name: String
        public let domain: Named
    }

    public struct ApplicationCredential: Sendable {
        public let id: String
        public let name: String
        public let restricted: Bool
        /// The calls the credential may make; empty: any.
        public let accessRules: [AccessRuleRow]
    }

    public let payload: TokenPayload
    public let user: Named
    public let userDomain: Named
    public let project: Project?
    public let domain: Named?
    public var system: Bool { payload.scope == .system }
    public let roles: [Named]
    public let applicationCredential: ApplicationCredential?
    public let trust: Trust?

    public struct Trust: Sendable {
        public let id: String
        public let impersonation: Bool
        public let trusteeUserID: String
        public let trustorUserID: String
    }

    public var issuedAt: Date { payload.issuedAt }
    public var expiresAt: Date { payload.expiresAt }

    /// oslo.policy's credentials of this token.
    public var credentials: PolicyCredentials {
        var attributes = ["user_id": user.id, "token.user_id": user.id, "token.user.domain.id": userDomain.id]
        if let project {
            attributes["project_id"] = project.id
            attributes["token.project.id"] = project.id
            attributes["token.project.domain.id"] = project.domain.id
        }
        if let domain {
            attributes["domain_id"] = domain.id
            attributes["token.domain.id"] = domain.id
        }
        if system { attributes["system_scope"] = "all" }
        return PolicyCredentials(roles: Set(roles.map { $0.name.lowercased() }), attributes: attributes)
    }
}

/// One service of the catalog with its enabled endpoints.
public struct CatalogEntry: Sendable {
    public let id: String
    public let type: String
    public let name: String
    public let endpoints: [EndpointRow]
}

/// Keystone's logic: authentication, Fernet tokens, revocation, effective roles, the catalog,
/// and the identity resources (in the extension files). Validating a valid token reads only
/// memory: resolved tokens and revocation events are cached and refreshed in the background.
public final class IdentityService: Sendable {
    public let database: Database
    public let options: IdentityOptions
    let logger: Logger
    let keyRepository: FernetKeyRepository

    struct Cached: Sendable {
        let info: TokenInfo
        let until: Date
    }

    struct State: Sendable {
        var sealer: TokenSealer
        var tokens: [String: Cached] = [:]
        /// Bumped by every change to identity data: older cache entries are stale.
        var generation: UInt64 = 0
        var revocations: [String: RevocationEventRow] = [:]
        var catalog: [CatalogEntry]?
        var catalogUntil = Date.distantPast
        /// Bumped whenever a newly read catalog is kept (what encoded copies are keyed by).
        var catalogVersion: UInt64 = 0
        /// OS-EP-FILTER: the projects whose catalog is filtered (CatalogExtensions.swift).
        var catalogFilters: CatalogFilters?
        var lastForcedKeyLoad = Date.distantPast
        /// The shared generation (identity_generation) last read; nil before the first read.
        var sharedGeneration: Int64?
        var lastEventSeen: Int64 = 0
        var lastKeyLoad = Date()
    }

    let state: Mutex<State>
    static let maxCachedTokens = 50_000

    public init(database: Database, options: IdentityOptions, logger: Logger) throws {
        self.database = database
        self.options = options
        self.logger = logger
        keyRepository = FernetKeyRepository(directory: options.keyRepository, maxActiveKeys: options.maxActiveKeys)
        let keys = try keyRepository.load()
        state = Mutex(State(sealer: TokenSealer(keys: keys)))
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
    static func newID() -> String { UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }

    // MARK: cache and background refresh

    /// Forgets every resolved token and the catalog: identity data changed.
    func invalidate() {
        state.withLock { state in
            state.generation &+= 1
            state.tokens.removeAll(keepingCapacity: true)
            state.catalog = nil
        }
    }

    /// Loads every live revocation event (at start), then keeps loading new ones and reloads the
    /// key repository every `refreshInterval` until cancelled.
    public func runRefresh() async {
        while !Task.isCancelled {
            do {
                try await refreshRevocations()
                try reloadKeysIfDue()
            } catch {
                logger.warning("identity refresh failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(options.refreshInterval))
        }
    }

    /// Reads revocation events created since the last read (with an overlap for clock skew
    /// between controllers) and drops those older than any token could be.
    public func refreshRevocations() async throws {
        let since = state.withLock { $0.lastEventSeen } - 60_000
        let (events, shared) = try await database.withConnection { sql in
            (try await IdentityTables.revocationEvents.all(sql, where: [.atLeast("created_at", since)]),
             try await sql.raw("SELECT value FROM identity_generation WHERE id = 1").first()?.decode(column: "value", as: Int64.self))
        }
        // Another controller changed identity data: its resolved tokens and catalog are stale here.
        state.withLock { state in
            if let shared, let seen = state.sharedGeneration, seen != shared {
                state.generation &+= 1
                state.tokens.removeAll(keepingCapacity: true)
                state.catalog = nil
            }
            if let shared { state.sharedGeneration = shared }
        }
        let oldest = Self.now() - Int64(options.tokenExpiration * 1000) - 60_000
        state.withLock { state in
            var added = false
            for event in events where state.revocations[event.id] == nil {
                state.revocations[event.id] = event
                state.lastEventSeen = max(state.lastEventSeen, event.createdAt)
                added = true
            }
            state.revocations = state.revocations.filter { $0.value.issuedBefore >= oldest }
            if added { state.tokens.removeAll(keepingCapacity: true) }
        }
    }

    func reloadKeysIfDue(force: Bool = false) throws {
        let due = state.withLock { force || Date().timeIntervalSince($0.lastKeyLoad) > 30 }
        guard due else { return }
        let keys = try keyRepository.load()
        state.withLock { state in
            state.sealer = TokenSealer(keys: keys)
            state.lastKeyLoad = Date()
        }
    }

    /// Records a revocation in the database and in this controller's memory.
    func revoke(_ event: RevocationEventRow, on sql: any SQLDatabase) async throws {
        try await IdentityTables.revocationEvents.insert(sql, event)
        state.withLock { state in
            state.revocations[event.id] = event
            state.tokens.removeAll(keepingCapacity: true)
            state.generation &+= 1
        }
    }

    func revocationEvent(userID: String? = nil, projectID: String? = nil, domainID: String? = nil,
                         auditID: String? = nil, applicationCredentialID: String? = nil) -> RevocationEventRow {
        let now = Self.now()
        return RevocationEventRow(userID: userID, projectID: projectID, domainID: domainID, auditID: auditID,
                                  applicationCredentialID: applicationCredentialID, issuedBefore: now, createdAt: now)
    }

    static func isRevoked(_ info: TokenInfo, by events: Dictionary<String, RevocationEventRow>.Values) -> Bool {
        let issued = Int64(info.issuedAt.timeIntervalSince1970 * 1000)
        for event in events where issued <= event.issuedBefore {
            if let user = event.userID, user != info.user.id { continue }
            if let project = event.projectID, project != info.project?.id { continue }
            if let domain = event.domainID,
               domain != info.domain?.id && domain != info.project?.domain.id && domain != info.userDomain.id { continue }
            if let audit = event.auditID, info.payload.auditIDs.first != audit { continue }
            if let credential = event.applicationCredentialID, credential != info.applicationCredential?.id { continue }
            return true
        }
        return false
    }

    // MARK: tokens

    /// Validates a token: its signature with any key of the repository, its expiry, that it
    /// was not revoked and that its user, scope and roles still stand.
    /// Throws `.notFound(kind: "token")` when it is not valid.
    public func validate(_ token: String, allowExpired: Bool = false) async throws -> TokenInfo {
        // A user token sent with a service token may have expired within the window: its
        // expiry is judged as if it were that much earlier.
        let now = allowExpired ? Date().addingTimeInterval(-options.allowExpiredWindow) : Date()
        let (sealer, cached) = state.withLock { state -> (TokenSealer, Cached?) in
            (state.sealer, state.tokens[token])
        }
        if let cached, cached.until > Date(), cached.info.expiresAt > now {
            let revoked = state.withLock { Self.isRevoked(cached.info, by: $0.revocations.values) }
            if revoked { throw IdentityError.notFound(kind: "token", id: Self.shortened(token)) }
            return cached.info
        }
        let payload: TokenPayload
        do {
            payload = try sealer.open(token, now: now).payload
        } catch FernetError.badSignature {
            // The repository may have been rotated since it was read (checked at most every 5 s:
            // forged tokens must not turn into disk reads).
            let due = state.withLock { state -> Bool in
                guard Date().timeIntervalSince(state.lastForcedKeyLoad) > 5 else { return false }
                state.lastForcedKeyLoad = Date()
                return true
            }
            if due { try? reloadKeysIfDue(force: true) }
            guard let opened = try? state.withLock({ $0.sealer }).open(token, now: now) else {
                throw IdentityError.notFound(kind: "token", id: Self.shortened(token))
            }
            payload = opened.payload
        } catch {
            throw IdentityError.notFound(kind: "token", id: Self.shortened(token))
        }
        let generation = state.withLock { $0.generation }
        let info: TokenInfo
        do {
            info = try await resolve(payload)
        } catch IdentityError.unauthorized, IdentityError.notFound {
            throw IdentityError.notFound(kind: "token", id: Self.shortened(token))
        }
        let revoked = state.withLock { state -> Bool in
            if Self.isRevoked(info, by: state.revocations.values) { return true }
            if state.generation == generation {
                if state.tokens.count >= Self.maxCachedTokens { state.tokens.removeAll(keepingCapacity: true) }
                state.tokens[token] = Cached(info: info, until: Date().addingTimeInterval(options.validationCacheLifetime))
            }
            return false
        }
        if revoked { throw IdentityError.notFound(kind: "token", id: Self.shortened(token)) }
        return info
    }

    static func shortened(_ token: String) -> String { token.count > 16 ? String(token.prefix(8)) + "…" : token }

    /// Revokes one token (by its audit id). Throws `.notFound` if it is not valid.
    public func revoke(token: String) async throws {
        let info = try await validate(token)
        let event = revocationEvent(auditID: info.payload.auditIDs.first)
        try await database.withConnection { sql in try await self.revoke(event, on: sql) }
    }

    /// Resolves a payload against the database: the user must exist and be enabled, the scope
    /// must exist and be enabled, and a scoped token must still carry at least one role.
    func resolve(_ payload: TokenPayload) async throws -> TokenInfo {
        try await database.withConnection { sql in
            let (user, userDomain) = try await self.enabledUser(sql, id: payload.userID)
            var project: TokenInfo.Project?
            var domain: TokenInfo.Named?
            var roles: [RoleRow] = []
            var credential: TokenInfo.ApplicationCredential?
            var trust: TokenInfo.Trust?
            switch payload.scope {
            case .unscoped: break
            case .project(let id):
                let (row, projectDomain) = try await self.enabledProject(sql, id: id)
                project = TokenInfo.Project(id: row.id, name: row.name, domain: .init(id: projectDomain.id, name: projectDomain.name))
                roles = try await self.effectiveRoles(sql, userID: user.id, targetType: "project", targetID: row.id)
            case .domain(let id):
                guard let row = try await IdentityTables.domains.get(sql, id: id), row.enabled else {
                    throw IdentityError.unauthorized("The domain \(id) is not enabled or does not exist.")
                }
                domain = .init(id: row.id, name: row.name)
                roles = try await self.effectiveRoles(sql, userID: user.id, targetType: "domain", targetID: row.id)
            case .system:
                roles = try await self.effectiveRoles(sql, userID: user.id, targetType: "system", targetID: "all")
            }
            if let credentialID = payload.applicationCredentialID {
                guard let row = try await IdentityTables.applicationCredentials.get(sql, id: credentialID) else {
                    throw IdentityError.unauthorized("The application credential \(credentialID) no longer exists.")
                }
                let granted = Set(try await IdentityTables.applicationCredentialRoles
                    .all(sql, where: [.equals("application_credential_id", row.id)]).map(\.roleID))
                let grantedWithImplied = try await self.expandImplied(sql, roleIDs: granted)
                roles = roles.filter { grantedWithImplied.contains($0.id) }
                credential = .init(id: row.id, name: row.name, restricted: !row.unrestricted,
                                   accessRules: try await self.accessRules(ofCredential: row.id, sql))
            }
            if let trustID = payload.trustID {
                guard let row = try await IdentityTables.trusts.get(sql, id: trustID), row.deletedAt == nil,
                      row.expiresAt.map({ $0 > Self.now() }) ?? true, case .project(let id) = payload.scope, row.projectID == id,
                      let granted = try await self.trustRoles(sql, row) else {
                    throw IdentityError.unauthorized("The trust \(trustID) is no longer valid.")
                }
                // Both ends of the trust must still be enabled users.
                _ = try await self.enabledUser(sql, id: row.trustorUserID)
                _ = try await self.enabledUser(sql, id: row.trusteeUserID)
                roles = granted
                trust = .init(id: row.id, impersonation: row.impersonation, trusteeUserID: row.trusteeUserID,
                              trustorUserID: row.trustorUserID)
            }
            if payload.scope != .unscoped && roles.isEmpty {
                throw IdentityError.unauthorized("The user \(user.id) has no role on the requested scope.")
            }
            return TokenInfo(payload: payload, user: .init(id: user.id, name: user.name),
                             userDomain: .init(id: userDomain.id, name: userDomain.name), project: project, domain: domain,
                             roles: roles.map { .init(id: $0.id, name: $0.name) }, applicationCredential: credential, trust: trust)
        }
    }

    func enabledUser(_ sql: any SQLDatabase, id: String) async throws -> (UserRow, DomainRow) {
        guard let user = try await IdentityTables.users.get(sql, id: id), user.enabled,
              let domain = try await IdentityTables.domains.get(sql, id: user.domainID), domain.enabled else {
            throw IdentityError.unauthorized("The user \(id) is disabled or does not exist.")
        }
        return (user, domain)
    }

    func enabledProject(_ sql: any SQLDatabase, id: String) async throws -> (ProjectRow, DomainRow) {
        guard let project = try await IdentityTables.projects.get(sql, id: id), project.enabled,
              let domain = try await IdentityTables.domains.get(sql, id: project.domainID), domain.enabled else {
            throw IdentityError.unauthorized("The project \(id) is disabled or does not exist.")
        }
        return (project, domain)
    }

    // MARK: authentication

    /// `POST /v3/auth/tokens`: authenticates, resolves the scope and issues a token.
    public func issue(_ request: AuthRequest) async throws -> (token: String, info: TokenInfo) {
        let now = Date()
        var methods: TokenPayload.Methods
        var userID: String
        var expiresAt = now.addingTimeInterval(options.tokenExpiration)
        var auditIDs = [TokenPayload.newAuditID()]
        var scope = request.scope
        var credentialID: String?

        switch request.method {
        case .password(let reference, let password):
            userID = try await checkPassword(reference, password)
            methods = .password
        case .token(let token):
            let original: TokenInfo
            do {
                original = try await validate(token)
            } catch {
                throw IdentityError.authenticationRequired
            }
            if original.applicationCredential != nil {
                throw IdentityError.forbidden("A token created from an application credential cannot be rescoped.")
            }
            if original.trust != nil {
                throw IdentityError.forbidden("You are not authorized to perform the requested action: Trust-scoped tokens cannot be rescoped.")
            }
            userID = original.user.id
            methods = original.payload.methods.union(.token)
            expiresAt = original.expiresAt
            auditIDs.append(original.payload.auditIDs.last!)
            if scope == .unspecified { scope = .unscoped }
        case .applicationCredential(let reference, let secret):
            let credential = try await checkApplicationCredential(reference, secret)
            userID = credential.userID
            methods = .applicationCredential
            credentialID = credential.id
            if let expiry = credential.expiresAt {
                expiresAt = min(expiresAt, Date(timeIntervalSince1970: TimeInterval(expiry) / 1000))
            }
            switch scope {
            case .unspecified: break
            case .project(.id(let id)) where id == credential.projectID: break
            default:
                throw IdentityError.unauthorized("An application credential token is scoped to the credential's project only.")
            }
            scope = .project(.id(credential.projectID))
        case .totp(let reference, let passcode):
            userID = try await checkTOTP(reference, passcode: passcode)
            methods = .totp
        }
        // The other factors of a multi-factor request name the same user.
        for method in request.additional {
            let (other, proved): (String, TokenPayload.Methods)
            switch method {
            case .password(let reference, let password): (other, proved) = (try await checkPassword(reference, password), .password)
            case .totp(let reference, let passcode): (other, proved) = (try await checkTOTP(reference, passcode: passcode), .totp)
            default: throw IdentityError.unauthorized("Attempted to authenticate with an unsupported method.")
            }
            guard other == userID else { throw IdentityError.authenticationRequired }
            methods.formUnion(proved)
        }
        if let receipt = request.receipt {
            let (receiptUser, proved) = try openReceipt(receipt)
            guard receiptUser == userID else { throw IdentityError.unauthorized("The receipt is for another user.") }
            methods.formUnion(proved)
        }
        if !methods.isDisjoint(with: [.password, .totp]) && !methods.contains(.token) {
            try await enforceMultiFactorRules(userID: userID, methods: methods)
        }

        var trustID: String?
        if case .trust(let id) = scope {
            if credentialID != nil {
                throw IdentityError.forbidden("You are not authorized to perform the requested action: Application credentials cannot use trusts.")
            }
            let trust: TrustRow
            do {
                trust = try await read { sql in try await self.usableTrust(sql, id: id) }
            } catch IdentityError.notFound {
                throw IdentityError.unauthorized("The trust \(id) is not valid.")
            }
            guard trust.trusteeUserID == userID else {
                throw IdentityError.forbidden("You are not authorized to perform the requested action: The user is not the trustee of this trust.")
            }
            guard let project = trust.projectID else {
                throw IdentityError.forbidden("You are not authorized to perform the requested action: A trust without a project cannot scope a token.")
            }
            if trust.impersonation { userID = trust.trustorUserID }
            if let expiry = trust.expiresAt { expiresAt = min(expiresAt, Date(timeIntervalSince1970: TimeInterval(expiry) / 1000)) }
            trustID = trust.id
            scope = .project(.id(project))
        }
        let payloadScope = try await resolveScope(scope, userID: trustID == nil ? userID : nil)
        let payload = TokenPayload(userID: userID, methods: methods, scope: payloadScope, expiresAt: expiresAt,
                                   auditIDs: auditIDs, applicationCredentialID: credentialID, trustID: trustID, issuedAt: now)
        let info = try await resolve(payload)
        if let trustID { try await consumeTrustUse(trustID) }
        let token = try state.withLock { $0.sealer }.seal(payload)
        return (token, info)
    }

    /// The scope a request names; `userID` nil for a trust's own project (any user's default is not asked).
    func resolveScope(_ scope: AuthRequest.ScopeRequest, userID: String?) async throws -> TokenPayload.Scope {
        try await database.withConnection { sql in
            switch scope {
            case .trust(let id):
                // issue() resolves a trust into its project first; a trust here is a caller's mistake.
                throw IdentityError.unauthorized("The trust \(id) is not valid.")
            case .unscoped: return .unscoped
            case .system: return .system
            case .unspecified:
                guard let userID, let user = try await IdentityTables.users.get(sql, id: userID), let project = user.defaultProjectID,
                      !(try await self.effectiveRoles(sql, userID: userID, targetType: "project", targetID: project)).isEmpty
                else { return .unscoped }
                return .project(project)
            case .project(let reference):
                let project = try await self.findProject(sql, reference)
                return .project(project.id)
            case .domain(let reference):
                let domain = try await self.findDomain(sql, reference)
                return .domain(domain.id)
            }
        }
    }

    func findDomain(_ sql: any SQLDatabase, _ reference: DomainReference) async throws -> DomainRow {
        switch reference {
        case .id(let id):
            guard let row = try await IdentityTables.domains.get(sql, id: id) else {
                throw IdentityError.unauthorized("Could not find domain: \(id).")
            }
            return row
        case .name(let name):
            guard let row = try await IdentityTables.domains.first(sql, where: [.equals("name", name)]) else {
                throw IdentityError.unauthorized("Could not find domain: \(name).")
            }
            return row
        }
    }

    func findProject(_ sql: any SQLDatabase, _ reference: ProjectReference) async throws -> ProjectRow {
        switch reference {
        case .id(let id):
            guard let row = try await IdentityTables.projects.get(sql, id: id) else {
                throw IdentityError.unauthorized("Could not find project: \(id).")
            }
            return row
        case .name(let name, let domainReference):
            let domain = try await findDomain(sql, domainReference)
            guard let row = try await IdentityTables.projects.first(sql, where: [.equals("name", name), .equals("domain_id", domain.id)])
            else { throw IdentityError.unauthorized("Could not find project: \(name).") }
            return row
        }
    }

    func findUser(_ sql: any SQLDatabase, _ reference: UserReference) async throws -> UserRow? {
        switch reference {
        case .id(let id):
            return try await IdentityTables.users.get(sql, id: id)
        case .name(let name, let domainReference):
            guard let domain = try? await findDomain(sql, domainReference) else { return nil }
            return try await IdentityTables.users.first(sql, where: [.equals("name", name), .equals("domain_id", domain.id)])
        }
    }

    /// Checks a password; counts failures for lockout. Returns the user's id. An expired
    /// password is refused unless `allowExpired` (changing it is what the user must do).
    func checkPassword(_ reference: UserReference, _ password: String, allowExpired: Bool = false) async throws -> String {
        // No stored password is longer; refused before any hashing (a cheap way to burn CPU otherwise).
        guard password.count <= options.maxPasswordLength else { throw IdentityError.authenticationRequired }
        guard let user = try await database.withConnection({ sql in try await self.findUser(sql, reference) }) else {
            // Spend the same time as a real check, so a wrong name looks like a wrong password.
            _ = await PasswordHasher.hash(password, cost: options.passwordCost)
            throw IdentityError.authenticationRequired
        }
        let lockoutState = LockoutPolicy.State(
            failures: user.failedAuthCount,
            lastFailure: user.lastFailedAuthAt.map { Date(timeIntervalSince1970: TimeInterval($0) / 1000) })
        let userOptions = UserOptionValues(json: user.options)
        if !userOptions.ignoreLockout && options.lockout.isLocked(lockoutState) {
            throw IdentityError.unauthorized("The account is locked for user: \(user.id).")
        }
        guard let hash = user.passwordHash, await PasswordHasher.verify(password, against: hash) else {
            // One atomic UPDATE, so concurrent wrong guesses all count; an expired lockout
            // starts the count again.
            let now = Self.now(), limit = options.lockout.failureAttempts
            let expiredBefore = now - Int64(options.lockout.duration * 1000)
            try await database.withConnection { sql in
                try await sql.raw("""
                    UPDATE users SET failed_auth_count = CASE
                        WHEN \(bind: limit) > 0 AND failed_auth_count >= \(bind: limit) AND last_failed_auth_at < \(bind: expiredBefore) THEN 1
                        ELSE failed_auth_count + 1 END,
                    last_failed_auth_at = \(bind: now) WHERE id = \(bind: user.id)
                    """).run()
            }
            throw IdentityError.authenticationRequired
        }
        guard user.enabled else { throw IdentityError.unauthorized("The user \(user.id) is disabled.") }
        if !allowExpired, let expiry = user.passwordExpiresAt, expiry <= Self.now() {
            throw IdentityError.unauthorized("The password is expired and needs to be changed for user: \(user.id).")
        }
        if user.failedAuthCount > 0 {
            try await database.withConnection { sql in
                try await sql.update("users").set("failed_auth_count", to: 0).set("last_failed_auth_at", to: SQLLiteral.null)
                    .where("id", .equal, user.id).run()
            }
        }
        await rehashIfOld(table: "users", column: "password_hash", id: user.id, hash: hash, secret: password)
        return user.id
    }

    func checkApplicationCredential(_ reference: ApplicationCredentialReference, _ secret: String) async throws
        -> ApplicationCredentialRow {
        guard secret.count <= options.maxPasswordLength else { throw IdentityError.authenticationRequired }
        let row = try await database.withConnection { sql -> ApplicationCredentialRow? in
            switch reference {
            case .id(let id):
                return try await IdentityTables.applicationCredentials.get(sql, id: id)
            case .name(let name, let userReference):
                guard let user = try await self.findUser(sql, userReference) else { return nil }
                return try await IdentityTables.applicationCredentials.first(sql, where: [.equals("name", name),
                                                                                          .equals("user_id", user.id)])
            }
        }
        guard let row, await PasswordHasher.verify(secret, against: row.secretHash) else {
            throw IdentityError.authenticationRequired
        }
        if let expiry = row.expiresAt, expiry <= Self.now() {
            throw IdentityError.unauthorized("The application credential \(row.id) has expired.")
        }
        await rehashIfOld(table: "application_credentials", column: "secret_hash", id: row.id, hash: row.secretHash, secret: secret)
        return row
    }

    /// A hash of an older scheme (plain bcrypt, which reads 72 bytes) is replaced now that the
    /// secret it hashes is known; only if it is still the one checked, so a concurrent change wins.
    /// The check already succeeded: a failed replacement is logged and tried at the next login.
    private func rehashIfOld(table: String, column: String, id: String, hash: String, secret: String) async {
        guard PasswordHasher.needsRehash(hash) else { return }
        let replacement = await PasswordHasher.hash(secret, cost: options.passwordCost)
        do {
            try await database.withConnection { sql in
                try await sql.update(table).set(column, to: replacement).where("id", .equal, id).where(column, .equal, hash).run()
            }
        } catch {
            logger.warning("could not replace an old password hash", metadata: ["table": "\(table)", "id": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: roles

    /// The roles a user has on a target, directly or through a group, with implied roles added.
    /// On a project this includes the roles inherited (OS-INHERIT) from its domain and from
    /// the projects above it.
    public func effectiveRoles(_ sql: any SQLDatabase, userID: String, targetType: String, targetID: String) async throws -> [RoleRow] {
        let groups = try await IdentityTables.groupMembers.all(sql, where: [.equals("user_id", userID)]).map(\.groupID)
        func assignments(_ type: String, _ ids: [String], inherited: Bool) async throws -> [AssignmentRow] {
            var rows = try await IdentityTables.assignments.all(sql, where: [
                .equals("actor_type", "user"), .equals("actor_id", userID), .equals("target_type", type),
                .inList("target_id", ids), .equals("inherited", inherited)])
            if !groups.isEmpty {
                rows += try await IdentityTables.assignments.all(sql, where: [
                    .equals("actor_type", "group"), .inList("actor_id", groups), .equals("target_type", type),
                    .inList("target_id", ids), .equals("inherited", inherited)])
            }
            return rows
        }
        var direct = try await assignments(targetType, [targetID], inherited: false)
        if targetType == "project", let project = try await IdentityTables.projects.get(sql, id: targetID) {
            let ancestors = try await projectAncestors(sql, project)
            direct += try await assignments("domain", [project.domainID], inherited: true)
            if !ancestors.isEmpty { direct += try await assignments("project", ancestors, inherited: true) }
        }
        let ids = try await expandImplied(sql, roleIDs: Set(direct.map(\.roleID)))
        // Domain-specific roles only ever imply global ones; they never reach a token (as Keystone).
        return try await IdentityTables.roles.all(sql, where: [.inList("id", Array(ids))], orderBy: "name").filter { $0.domainID.isEmpty }
    }

    /// The ids of the projects above `project`, nearest first.
    func projectAncestors(_ sql: any SQLDatabase, _ project: ProjectRow) async throws -> [String] {
        var ancestors: [String] = []
        var next = project.parentID
        while let id = next, !ancestors.contains(id), let parent = try await IdentityTables.projects.get(sql, id: id) {
            ancestors.append(parent.id)
            next = parent.parentID
        }
        return ancestors
    }

    /// The roles plus every role they imply, transitively.
    func expandImplied(_ sql: any SQLDatabase, roleIDs: Set<String>) async throws -> Set<String> {
        guard !roleIDs.isEmpty else { return [] }
        let rules = try await IdentityTables.impliedRoles.all(sql)
        var result = roleIDs
        var frontier = Array(roleIDs)
        while let next = frontier.popLast() {
            for rule in rules where rule.priorRoleID == next && !result.contains(rule.impliedRoleID) {
                result.insert(rule.impliedRoleID)
                frontier.append(rule.impliedRoleID)
            }
        }
        return result
    }

    // MARK: catalog

    /// Every enabled service with its enabled endpoints (cached until the catalog changes).
    public func catalog() async throws -> [CatalogEntry] {
        try await versionedCatalog().entries
    }

    /// The catalog and a version that changes whenever the kept catalog is replaced.
    public func versionedCatalog() async throws -> (entries: [CatalogEntry], version: UInt64) {
        let cached = state.withLock { state -> ([CatalogEntry], UInt64)? in
            guard let catalog = state.catalog, state.catalogUntil > Date() else { return nil }
            return (catalog, state.catalogVersion)
        }
        if let cached { return cached }
        let generation = state.withLock { $0.generation }
        let entries = try await database.withConnection { sql in
            let services = try await IdentityTables.services.all(sql, where: [.equals("enabled", true)], orderBy: "type")
            let endpoints = try await IdentityTables.endpoints.all(sql, where: [.equals("enabled", true)], orderBy: "interface")
            return services.map { service in
                CatalogEntry(id: service.id, type: service.type, name: service.name,
                             endpoints: endpoints.filter { $0.serviceID == service.id })
            }
        }
        // Kept only if nothing changed meanwhile; re-read after a while for other controllers' changes.
        return state.withLock { state in
            guard state.generation == generation else { return (entries, 0) }  // version 0: never cached as encoded
            state.catalog = entries
            state.catalogUntil = Date().addingTimeInterval(options.validationCacheLifetime)
            state.catalogVersion &+= 1
            if state.catalogVersion == 0 { state.catalogVersion = 1 }
            return (entries, state.catalogVersion)
        }
    }
}
