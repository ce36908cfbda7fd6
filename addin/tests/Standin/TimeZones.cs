// Outlook's TimeZones collection in the stand-in: Windows zone IDs, the machine's current zone, and
// ConvertTime, backed by the tz database under the IANA names CLDR's windowsZones maps them to.
using System;
using System.Collections.Generic;

namespace OpConnect.Outlook.Standin
{
    public class OutlookTimeZone
    {
        internal readonly TimeZoneInfo Info;
        internal OutlookTimeZone(string id, TimeZoneInfo info) { ID = id; Info = info; }
        public string ID { get; private set; }
        public string Name { get { return ID; } }
    }

    public class TimeZones
    {
        // A few rows of CLDR's windowsZones (territory 001).
        static readonly Dictionary<string, string> Iana = new Dictionary<string, string>
        {
            { "UTC", "UTC" }, { "W. Europe Standard Time", "Europe/Berlin" }, { "GMT Standard Time", "Europe/London" },
            { "Eastern Standard Time", "America/New_York" }, { "Pacific Standard Time", "America/Los_Angeles" },
            { "Tokyo Standard Time", "Asia/Tokyo" }, { "Romance Standard Time", "Europe/Paris" },
        };
        readonly Dictionary<string, OutlookTimeZone> zones = new Dictionary<string, OutlookTimeZone>();

        internal TimeZones(string current)
        {
            foreach (var kv in Iana) zones[kv.Key] = new OutlookTimeZone(kv.Key, TimeZoneInfo.FindSystemTimeZoneById(kv.Value));
            CurrentTimeZone = this[current];
        }

        public OutlookTimeZone CurrentTimeZone { get; private set; }

        public OutlookTimeZone this[string id]
        {
            get
            {
                OutlookTimeZone z;
                if (!zones.TryGetValue(id, out z)) throw new ArgumentException("unknown time zone " + id);
                return z;
            }
        }

        public DateTime ConvertTime(DateTime source, OutlookTimeZone from, OutlookTimeZone to)
        {
            return FromUtc(ToUtc(source, from), to);
        }

        internal DateTime ToUtc(DateTime wall, OutlookTimeZone zone)
        {
            return TimeZoneInfo.ConvertTimeToUtc(DateTime.SpecifyKind(wall, DateTimeKind.Unspecified), zone.Info);
        }

        internal DateTime FromUtc(DateTime utc, OutlookTimeZone zone)
        {
            return DateTime.SpecifyKind(TimeZoneInfo.ConvertTimeFromUtc(DateTime.SpecifyKind(utc, DateTimeKind.Utc), zone.Info), DateTimeKind.Unspecified);
        }
    }
}
