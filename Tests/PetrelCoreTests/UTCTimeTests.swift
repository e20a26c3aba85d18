import Foundation
import PetrelCore
import Testing

@Suite struct UTCTimeTests {
    @Test func formatsInUTCWithTheAskedFraction() {
        let date = Date(timeIntervalSince1970: 1_795_186_800.123_9)  // 2026-11-20T15:00:00.1239Z
        #expect(UTCTime.format(date) == "2026-11-20T15:00:00.123Z")
        #expect(UTCTime.format(date, fractionDigits: 0) == "2026-11-20T15:00:00Z")
        // Read to the microsecond: .1239 is 0.12389999… as a double, and a whole millisecond such
        // as .927 is 0.92699…; neither loses its last digit.
        #expect(UTCTime.format(date, fractionDigits: 6) == "2026-11-20T15:00:00.123900Z")
        #expect(UTCTime.format(Date(timeIntervalSince1970: 1_795_186_800_927 / 1000)) == "2026-11-20T15:00:00.927Z")
        #expect(UTCTime.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        // The same text Foundation's ISO 8601 style writes.
        for seconds in [0.0, 951_782_400.5, 1_795_100_400.999, 4_102_444_799.25] {
            let date = Date(timeIntervalSince1970: seconds)
            let foundation = date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
            #expect(UTCTime.format(date) == foundation)
        }
    }

    @Test func parsesWhatClientsSend() {
        let base = Date(timeIntervalSince1970: 1_795_186_800)
        #expect(UTCTime.parse("2026-11-20T15:00:00Z") == base)
        #expect(UTCTime.parse("2026-11-20T15:00:00") == base)
        #expect(UTCTime.parse("2026-11-20 15:00:00") == base)
        #expect(UTCTime.parse("2026-11-20T15:00Z") == base)
        #expect(UTCTime.parse("2026-11-20T16:30:00+01:30") == base)
        #expect(UTCTime.parse("2026-11-20T10:00:00-0500") == base)
        #expect(UTCTime.parse("2026-11-20T16:00:00+01") == base)
        #expect(UTCTime.parse("2026-11-20T15:00:00.250000Z") == base.addingTimeInterval(0.25))
        #expect(UTCTime.parse("2026-11-20T15:00:00.5") == base.addingTimeInterval(0.5))
        #expect(UTCTime.parse(UTCTime.format(base.addingTimeInterval(0.125))) == base.addingTimeInterval(0.125))
    }

    @Test(arguments: ["", "yesterday", "2026-11-20", "2026-13-01T00:00:00Z", "2026-04-31T00:00:00Z",
                      "2026-11-20T24:00:00Z", "2026-11-20T15:00:00.Z", "2026-11-20T15:00:00Zjunk",
                      "2026-11-20T15:00:00+25:00", "26-11-20T15:00:00Z"])
    func refusesWhatIsNotATime(_ text: String) {
        #expect(UTCTime.parse(text) == nil)
    }
}
