import Crypto
import Foundation
import ProcessDriver

/// x509 key pairs (Nova's microversion 2.2 `type: x509`): the "public key" is a PEM
/// certificate. An imported one is read as Python's `cryptography` reads it (the first
/// CERTIFICATE block, a DER certificate and nothing after it); its fingerprint is Nova's
/// `generate_x509_fingerprint`: the SHA-1 of the DER, colon-separated lowercase hex. A generated
/// one is Nova's `generate_winrm_x509_cert`: a self-signed RSA 2048 certificate for ten years,
/// subject `/CN=<user id>`, client authentication with the user's UPN `<user id>@localhost`,
/// made by `openssl`; its private key is the key and certificate as PKCS#12 (empty
/// password), base64.
extension KeyPairs {
    static func invalidCertificate(_ why: String) -> Failure {
        .invalidKey("Keypair data is invalid: failed to generate X509 fingerprint. Error message: \(why)")
    }

    /// The DER of the first certificate in `pem`, checked to be one whole X.509 certificate.
    public static func certificateDER(ofPEM pem: String) throws -> [UInt8] {
        let lines = pem.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let framing = "Unable to load PEM file. See https://cryptography.io/en/latest/faq/#why-can-t-i-import-my-pem-file for more details. MalformedFraming"
        var sawBlock = false
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("-----BEGIN "), line.hasSuffix("-----"), line.count > 16 else { index += 1; continue }
            let label = String(line.dropFirst(11).dropLast(5))
            guard let end = lines[(index + 1)...].firstIndex(of: "-----END \(label)-----") else { throw invalidCertificate(framing) }
            sawBlock = true
            if label == "CERTIFICATE" || label == "X509 CERTIFICATE" {
                let body = lines[(index + 1)..<end].joined()
                guard !body.contains(":"), let data = Data(base64Encoded: body), !data.isEmpty else { throw invalidCertificate(framing) }
                let der = [UInt8](data)
                try checkCertificate(der)
                return der
            }
            index = end + 1
        }
        throw invalidCertificate(sawBlock ? "Valid PEM but no BEGIN CERTIFICATE/END CERTIFICATE delimiters. Are you sure this is a certificate?"
                                          : framing)
    }

    /// Nova's fingerprint of an x509 key pair: SHA-1 of the certificate's DER, `aa:bb:…`.
    public static func fingerprint(ofCertificate pem: String) throws -> String {
        Insecure.SHA1.hash(data: try certificateDER(ofPEM: pem)).map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    /// The fingerprint of a key pair of `type` (`ssh` or `x509`).
    public static func fingerprint(of publicKey: String, type: String) throws -> String {
        type == "x509" ? try fingerprint(ofCertificate: publicKey) : try fingerprint(ofPublicKey: publicKey)
    }

    // MARK: DER

    /// A strict DER reader: definite, minimal lengths; one-byte tags.
    struct DERReader {
        let bytes: ArraySlice<UInt8>
        var offset: Int

        init(_ bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            offset = bytes.startIndex
        }

        var atEnd: Bool { offset == bytes.endIndex }
        var nextTag: UInt8? { atEnd ? nil : bytes[offset] }

        mutating func read() throws -> (tag: UInt8, content: ArraySlice<UInt8>) {
            guard bytes.endIndex - offset >= 2 else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: ShortData }") }
            let tag = bytes[offset]
            guard tag & 0x1F != 0x1F else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidTag }") }
            var length = Int(bytes[offset + 1])
            var start = offset + 2
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard count >= 1, count <= 4, bytes.endIndex - start >= count else {
                    throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidLength }")
                }
                length = 0
                for byte in bytes[start..<(start + count)] { length = length << 8 | Int(byte) }
                // DER: the shortest form, so a long form holds 128 or more, with no leading zero byte.
                guard length >= 128, bytes[start] != 0 else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidLength }") }
                start += count
            }
            guard bytes.endIndex - start >= length else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: ShortData }") }
            offset = start + length
            return (tag, bytes[start..<(start + length)])
        }

        mutating func expect(_ tag: UInt8, _ what: String) throws -> ArraySlice<UInt8> {
            let (found, content) = try read()
            guard found == tag else {
                throw invalidCertificate("error parsing asn1 value: ParseError { kind: UnexpectedTag { actual: Tag { value: \(found) } }, location: [\"\(what)\"] }")
            }
            return content
        }

        func finish(_ what: String) throws {
            guard atEnd else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: ExtraData, location: [\"\(what)\"] }") }
        }
    }

    /// Holds `der` to RFC 5280's Certificate: the TBS certificate's fields in order, an
    /// algorithm identifier and the signature bit string, nothing after them.
    static func checkCertificate(_ der: [UInt8]) throws {
        var outer = DERReader(der[...])
        var certificate = DERReader(try outer.expect(0x30, "Certificate"))
        try outer.finish("Certificate")
        var tbs = DERReader(try certificate.expect(0x30, "Certificate::tbs_cert"))
        func algorithm(_ content: ArraySlice<UInt8>, _ what: String) throws {
            var reader = DERReader(content)
            let oid = try reader.expect(0x06, what)
            guard !oid.isEmpty, oid.last! & 0x80 == 0 else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidValue, location: [\"\(what)\"] }") }
            if !reader.atEnd { _ = try reader.read() }
            try reader.finish(what)
        }
        func name(_ content: ArraySlice<UInt8>, _ what: String) throws {
            var reader = DERReader(content)
            while !reader.atEnd {
                var set = DERReader(try reader.expect(0x31, what))
                guard !set.atEnd else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidValue, location: [\"\(what)\"] }") }
                while !set.atEnd {
                    var attribute = DERReader(try set.expect(0x30, what))
                    _ = try attribute.expect(0x06, what)
                    _ = try attribute.read()
                    try attribute.finish(what)
                }
            }
        }
        func time(_ reader: inout DERReader, _ what: String) throws {
            let (tag, content) = try reader.read()
            let digits = content.dropLast()
            let valid = (tag == 0x17 && content.count == 13) || (tag == 0x18 && content.count == 15)
            guard valid, content.last == UInt8(ascii: "Z"), digits.allSatisfy({ (0x30...0x39).contains($0) }) else {
                throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidValue, location: [\"\(what)\"] }")
            }
        }
        if tbs.nextTag == 0xA0 {
            var explicit = DERReader(try tbs.read().content)
            let version = try explicit.expect(0x02, "TbsCertificate::version")
            try explicit.finish("TbsCertificate::version")
            guard version.count == 1, version.first! <= 2 else {
                throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidValue, location: [\"TbsCertificate::version\"] }")
            }
        }
        let serial = try tbs.expect(0x02, "TbsCertificate::serial")
        guard !serial.isEmpty else { throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidValue, location: [\"TbsCertificate::serial\"] }") }
        try algorithm(try tbs.expect(0x30, "TbsCertificate::signature_alg"), "TbsCertificate::signature_alg")
        try name(try tbs.expect(0x30, "TbsCertificate::issuer"), "TbsCertificate::issuer")
        var validity = DERReader(try tbs.expect(0x30, "TbsCertificate::validity"))
        try time(&validity, "Validity::not_before")
        try time(&validity, "Validity::not_after")
        try validity.finish("TbsCertificate::validity")
        try name(try tbs.expect(0x30, "TbsCertificate::subject"), "TbsCertificate::subject")
        var keyInfo = DERReader(try tbs.expect(0x30, "TbsCertificate::spki"))
        try algorithm(try keyInfo.expect(0x30, "SubjectPublicKeyInfo::algorithm"), "SubjectPublicKeyInfo::algorithm")
        let key = try keyInfo.expect(0x03, "SubjectPublicKeyInfo::subject_public_key")
        guard let unused = key.first, unused < 8 else {
            throw invalidCertificate("error parsing asn1 value: ParseError { kind: InvalidValue, location: [\"SubjectPublicKeyInfo::subject_public_key\"] }")
        }
        try keyInfo.finish("TbsCertificate::spki")
        // Optional: issuer and subject unique ids ([1], [2] implicit), extensions ([3] explicit).
        if tbs.nextTag == 0x81 { _ = try tbs.read() }
        if tbs.nextTag == 0x82 { _ = try tbs.read() }
        if tbs.nextTag == 0xA3 {
            var explicit = DERReader(try tbs.read().content)
            var extensions = DERReader(try explicit.expect(0x30, "TbsCertificate::raw_extensions"))
            try explicit.finish("TbsCertificate::raw_extensions")
            while !extensions.atEnd {
                var ext = DERReader(try extensions.expect(0x30, "Extension"))
                _ = try ext.expect(0x06, "Extension::extn_id")
                if ext.nextTag == 0x01 { _ = try ext.read() }
                _ = try ext.expect(0x04, "Extension::extn_value")
                try ext.finish("Extension")
            }
        }
        try tbs.finish("TbsCertificate")
        try algorithm(try certificate.expect(0x30, "Certificate::signature_alg"), "Certificate::signature_alg")
        _ = try certificate.expect(0x03, "Certificate::signature")
        try certificate.finish("Certificate")
    }

    // MARK: generation

    /// A new x509 key pair for `userID`, as Nova's `generate_winrm_x509_cert` makes it with
    /// `openssl`: the PEM certificate (the key pair's public key) and the base64 PKCS#12 that
    /// holds the private key with it (empty password).
    public static func generateX509(userID: String, bits: Int = 2048) async throws -> (certificate: String, privateKey: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-x509-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyFile = directory + "/temp.key", configFile = directory + "/temp.conf", bundle = directory + "/temp.p12"
        // Nova's openssl configuration: client authentication, the user's UPN as otherName (a user
        // id's line breaks dropped and the characters openssl's configuration reads escaped).
        let upn = userID.filter { !$0.isNewline }.map { "\\$#\"'".contains($0) ? "\\\($0)" : String($0) }.joined() + "@localhost"
        let config = "distinguished_name  = req_distinguished_name\n[req_distinguished_name]\n[v3_req_client]\n"
            + "extendedKeyUsage = clientAuth\nsubjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:\(upn)\n"
        try config.write(toFile: configFile, atomically: true, encoding: .utf8)
        // `-subj` reads '/' and '+' as separators: a user id holding one is escaped.
        let subject = "/CN=" + userID.map { "/+\\=".contains($0) ? "\\\($0)" : String($0) }.joined()
        let certificate = try await Command.check("openssl", ["req", "-x509", "-nodes", "-days", "3650", "-config", configFile,
                                                              "-newkey", "rsa:\(bits)", "-outform", "PEM", "-keyout", keyFile,
                                                              "-subj", subject, "-extensions", "v3_req_client"])
        try await Command.check("openssl", ["pkcs12", "-export", "-inkey", keyFile, "-password", "pass:", "-out", bundle], input: certificate)
        let pkcs12 = try Data(contentsOf: URL(fileURLWithPath: bundle))
        guard !pkcs12.isEmpty else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: bundle]) }
        return (certificate, pkcs12.base64EncodedString())
    }
}
