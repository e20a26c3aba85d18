@testable import ComputeAPI
import PetrelHTTP
import Testing

/// `config_drive` in `POST /servers`: Nova's booleans (the CLI sends the string "True"), an
/// empty string or null for none, anything else refused.
@Suite struct ConfigDriveRequestTests {
    @Test func novasBooleansAndNothingElse() throws {
        for (value, expected) in [(JSON.bool(true), true), (.bool(false), false), (.string("True"), true), (.string("1"), true),
                                  (.string("yes"), true), (.string(""), false), (.string("false"), false), (.null, false)] {
            #expect(try ComputeAPI.configDrive(value) == expected, "\(value)")
        }
        #expect(try ComputeAPI.configDrive(nil) == false)
        for value in [JSON.string("maybe"), .number(2), .array([])] {
            #expect(throws: APIFault.self, "\(value)") { try ComputeAPI.configDrive(value) }
        }
    }
}
