// Field set ↔ Outlook item: one row per property (CONTRACT key = Outlook member name), its kind and
// its default. A field absent from the set means the default; a read drops defaults and empties, so
// the agent's field set and Outlook's read of the same item compare equal.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Outlook
{
    public enum PropKind { Text, Int, Bool, Date, UtcTime }

    public class Prop
    {
        public string Key;
        public PropKind Kind;
        public object Default;
        /// <summary>Only meaningful when this boolean property is true (ReminderMinutesBeforeStart needs ReminderSet).</summary>
        public string OnlyIf;

        public Prop(string key, PropKind kind, object dflt = null, string onlyIf = null)
        {
            Key = key; Kind = kind; Default = dflt; OnlyIf = onlyIf;
        }
    }

    public static class PropertyTable
    {
        static Prop T(string k) { return new Prop(k, PropKind.Text); }
        static Prop I(string k, long d) { return new Prop(k, PropKind.Int, d); }
        static Prop B(string k) { return new Prop(k, PropKind.Bool, false); }
        static Prop D(string k) { return new Prop(k, PropKind.Date); }

        static readonly Prop[] Common = { T("Subject"), T("Body"), T("Categories"), I("Sensitivity", 0), I("Importance", 1) };

        /// <summary>The simple properties, in the order they are written (Outlook reacts to some: Status before Complete).</summary>
        public static readonly Dictionary<ItemClass, Prop[]> Tables = new Dictionary<ItemClass, Prop[]>
        {
            { ItemClass.Appointment, Common.Concat(new[] {
                T("Location"), I("BusyStatus", 2), B("ReminderSet"), new Prop("ReminderMinutesBeforeStart", PropKind.Int, null, "ReminderSet"),
            }).ToArray() },
            { ItemClass.Task, Common.Concat(new[] {
                D("StartDate"), D("DueDate"), I("Status", 0), I("PercentComplete", 0), B("Complete"),
                new Prop("DateCompleted", PropKind.Date, null, "Complete"), B("ReminderSet"),
                new Prop("ReminderTime", PropKind.UtcTime, null, "ReminderSet"),
            }).ToArray() },
            { ItemClass.Contact, new[] {
                // FullName first: Outlook parses it into the name parts, which are then set exactly.
                T("FullName"), T("FirstName"), T("MiddleName"), T("LastName"), T("Title"), T("Suffix"), T("FileAs"), T("NickName"),
                T("CompanyName"), T("Department"), T("JobTitle"), T("Email1Address"), T("Email1DisplayName"), T("Email2Address"),
                T("Email3Address"), T("BusinessTelephoneNumber"), T("Business2TelephoneNumber"), T("HomeTelephoneNumber"),
                T("Home2TelephoneNumber"), T("MobileTelephoneNumber"), T("BusinessFaxNumber"), T("HomeFaxNumber"), T("PagerNumber"),
                T("CarTelephoneNumber"), T("OtherTelephoneNumber"), T("AssistantTelephoneNumber"), T("PrimaryTelephoneNumber"),
            }.Concat(Addresses("BusinessAddress")).Concat(Addresses("HomeAddress")).Concat(Addresses("OtherAddress")).Concat(new[] {
                D("Birthday"), D("Anniversary"), T("WebPage"), T("BusinessHomePage"), T("PersonalHomePage"), T("IMAddress"),
                T("Body"), T("Categories"),
            }).ToArray() },
            { ItemClass.DistList, new[] { T("DLName"), T("Body"), T("Categories") } },
            { ItemClass.Note, new[] { T("Body"), T("Categories") } },
        };

        static IEnumerable<Prop> Addresses(string prefix)
        {
            return new[] { "Street", "City", "State", "PostalCode", "Country", "PostOfficeBox" }.Select(s => T(prefix + s));
        }

        /// <summary>Keys handled by the special cases (Special.cs), per class.</summary>
        public static readonly Dictionary<ItemClass, string[]> SpecialKeys = new Dictionary<ItemClass, string[]>
        {
            { ItemClass.Appointment, new[] { "AllDayEvent", "Start", "End", "StartTimeZone", "EndTimeZone", "Recurrence", "Exceptions", "Recipients" } },
            { ItemClass.Task, new[] { "Recurrence" } },
            { ItemClass.Contact, new[] { "HasPicture" } },
            { ItemClass.DistList, new[] { "Members" } },
            { ItemClass.Note, new string[0] },
        };

        public static HashSet<string> Keys(ItemClass cls)
        {
            return new HashSet<string>(Tables[cls].Select(p => p.Key).Concat(SpecialKeys[cls]));
        }

        /// <summary>The simple properties of an item, normalized.</summary>
        public static void Read(object item, ItemClass cls, Dictionary<string, object> into)
        {
            foreach (var p in Tables[cls])
            {
                if (p.OnlyIf != null && !Json.Bool(into, p.OnlyIf)) continue;
                var v = FromOutlook(p, Late.Get(item, p.Key));
                if (v != null) into[p.Key] = v;
            }
        }

        /// <summary>Writes every simple property: absent keys get their default (empty, no date, 0…).</summary>
        public static void Write(object item, ItemClass cls, Dictionary<string, object> fields)
        {
            foreach (var p in Tables[cls])
            {
                object v;
                fields.TryGetValue(p.Key, out v);
                if (p.OnlyIf != null && !Json.Bool(fields, p.OnlyIf)) continue;
                if (v == null && p.OnlyIf != null) continue; // leave Outlook's own default (15 minutes…)
                Late.Set(item, p.Key, ToOutlook(p, v));
            }
        }

        /// <summary>One property (an occurrence's changed field).</summary>
        public static void WriteOne(object item, Prop p, object value)
        {
            Late.Set(item, p.Key, ToOutlook(p, value));
        }

        /// <summary>An agent value as this table would read it back from Outlook (null = absent).</summary>
        public static object Normalize(Prop p, object v)
        {
            if (v == null) return null;
            switch (p.Kind)
            {
                case PropKind.Text:
                    var s = Convert.ToString(v, CultureInfo.InvariantCulture).Replace("\r\n", "\n");
                    if (p.Key == "Body") s = s.TrimEnd('\n');
                    return s.Length == 0 ? null : s;
                case PropKind.Int:
                    long n = Convert.ToInt64(v, CultureInfo.InvariantCulture);
                    return p.Default != null && n == (long)p.Default ? (object)null : n;
                case PropKind.Bool:
                    return v is bool && (bool)v ? (object)true : null;
                case PropKind.Date:
                    var ds = v as string;
                    return string.IsNullOrEmpty(ds) ? null : Late.ParseDate(ds).ToString(Late.DateFormat, CultureInfo.InvariantCulture);
                default:
                    var us = v as string;
                    if (string.IsNullOrEmpty(us)) return null;
                    var t = DateTime.Parse(us, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
                    return t.ToString("yyyy-MM-ddTHH:mm:ss'Z'", CultureInfo.InvariantCulture);
            }
        }

        static object FromOutlook(Prop p, object v)
        {
            if (v == null) return null;
            switch (p.Kind)
            {
                case PropKind.Date:
                    var d = (DateTime)v;
                    return Late.IsNoDate(d) ? null : d.ToString(Late.DateFormat, CultureInfo.InvariantCulture);
                case PropKind.UtcTime:
                    var t = (DateTime)v;
                    return Late.IsNoDate(t) ? null : DateTime.SpecifyKind(t, DateTimeKind.Local).ToUniversalTime()
                        .ToString("yyyy-MM-ddTHH:mm:ss'Z'", CultureInfo.InvariantCulture);
                default:
                    return Normalize(p, v);
            }
        }

        static object ToOutlook(Prop p, object v)
        {
            switch (p.Kind)
            {
                case PropKind.Text:
                    var s = v == null ? "" : Convert.ToString(v, CultureInfo.InvariantCulture);
                    return p.Key == "Body" ? s.Replace("\r\n", "\n").Replace("\n", "\r\n") : s;
                case PropKind.Int:
                    return (int)(v == null ? (long)(p.Default ?? 0L) : Convert.ToInt64(v, CultureInfo.InvariantCulture));
                case PropKind.Bool:
                    return v is bool && (bool)v;
                case PropKind.Date:
                    return v == null ? Late.NoDate : Late.ParseDate((string)v);
                default:
                    if (v == null) return Late.NoDate;
                    var t = DateTime.Parse((string)v, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
                    return DateTime.SpecifyKind(t, DateTimeKind.Utc).ToLocalTime();
            }
        }

        /// <summary>An agent field set restricted to what Outlook holds, in the form a read gives back.</summary>
        public static Dictionary<string, object> NormalizeFields(ItemClass cls, Dictionary<string, object> fields)
        {
            var result = new Dictionary<string, object>(StringComparer.Ordinal);
            if (fields == null) return result;
            foreach (var p in Tables[cls])
            {
                if (p.OnlyIf != null && !Json.Bool(fields, p.OnlyIf)) continue;
                object v;
                fields.TryGetValue(p.Key, out v);
                v = Normalize(p, Json.Normalize(v));
                if (v != null) result[p.Key] = v;
            }
            Special.Normalize(cls, fields, result);
            return result;
        }
    }
}
