// The fields a property table cannot express: appointment times and Windows time zones, recurrence
// patterns and their exceptions, meeting recipients, distribution-list members, contact pictures.
// Every COM object obtained here is released here; accessors are never chained.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Outlook
{
    /// <summary>What the special cases need from Outlook beside the item: Application (TimeZones) and the Session.</summary>
    public class OutlookContext
    {
        public dynamic Application;
        public dynamic Session;
    }

    public static class Special
    {
        static readonly string[] ExceptionKeys = { "Subject", "Location", "Body", "Start", "End", "BusyStatus", "AllDayEvent" };

        // ---- normalization of agent field sets (pure) ----

        public static void Normalize(ItemClass cls, Dictionary<string, object> f, Dictionary<string, object> into)
        {
            switch (cls)
            {
                case ItemClass.Appointment:
                    bool allDay = Json.Bool(f, "AllDayEvent");
                    if (allDay) into["AllDayEvent"] = true;
                    foreach (var k in new[] { "Start", "End" })
                    {
                        var s = Json.Str(f, k);
                        if (s != null) into[k] = allDay ? s.Substring(0, Math.Min(10, s.Length)) : Late.ParseLocal(s).ToString(Late.LocalFormat, CultureInfo.InvariantCulture);
                    }
                    if (!allDay)
                    {
                        foreach (var k in new[] { "StartTimeZone", "EndTimeZone" })
                            if (Json.Str(f, k) != null) into[k] = Json.Str(f, k);
                    }
                    var rec = NormalizeRecurrence(Json.Obj(f, "Recurrence"));
                    if (rec != null)
                    {
                        into["Recurrence"] = rec;
                        var exc = NormalizeExceptions(Json.Arr(f, "Exceptions"), allDay);
                        if (exc.Length > 0) into["Exceptions"] = exc;
                    }
                    var recipients = Json.Arr(f, "Recipients").OfType<Dictionary<string, object>>()
                        .Select(r => Recipient(Json.Str(r, "Name"), Json.Str(r, "Address"), Json.Long(r, "Type", 1)))
                        .OrderBy(r => Json.Str(r, "Address") ?? Json.Str(r, "Name"), StringComparer.OrdinalIgnoreCase).ToArray();
                    if (recipients.Length > 0) into["Recipients"] = recipients;
                    break;
                case ItemClass.Task:
                    var trec = NormalizeRecurrence(Json.Obj(f, "Recurrence"));
                    if (trec != null) into["Recurrence"] = trec;
                    break;
                case ItemClass.Contact:
                    if (Json.Bool(f, "HasPicture")) into["HasPicture"] = true;
                    break;
                case ItemClass.DistList:
                    var members = NormalizeMembers(Json.Arr(f, "Members"));
                    if (members.Length > 0) into["Members"] = members;
                    break;
            }
        }

        static Dictionary<string, object> Recipient(string name, string address, long type)
        {
            var r = new Dictionary<string, object>(StringComparer.Ordinal);
            if (!string.IsNullOrEmpty(name) && name != address) r["Name"] = name;
            if (!string.IsNullOrEmpty(address)) r["Address"] = address;
            if (type != 1) r["Type"] = type;
            return r;
        }

        /// <summary>Members Outlook can hold (those with an address), by address. Members known only by UID stay at the agent.</summary>
        public static object[] NormalizeMembers(object[] members)
        {
            return members.OfType<Dictionary<string, object>>().Where(m => !string.IsNullOrEmpty(Json.Str(m, "Address")))
                .Select(m => (object)Recipient(Json.Str(m, "Name"), Json.Str(m, "Address"), 1))
                .OrderBy(m => Json.Str((Dictionary<string, object>)m, "Address"), StringComparer.OrdinalIgnoreCase).ToArray();
        }

        public static Dictionary<string, object> NormalizeRecurrence(Dictionary<string, object> r)
        {
            if (r == null) return null;
            long type = Json.Long(r, "RecurrenceType", 0);
            var n = Json.O("RecurrenceType", type);
            long interval = Json.Long(r, "Interval", 1);
            if (interval > 1) n["Interval"] = interval;
            if (type == 1 || type == 3 || type == 6) Put(n, "DayOfWeekMask", Json.Long(r, "DayOfWeekMask", 0));
            if (type == 2 || type == 5) Put(n, "DayOfMonth", Json.Long(r, "DayOfMonth", 0));
            if (type == 3 || type == 6) Put(n, "Instance", Json.Long(r, "Instance", 0));
            if (type == 5 || type == 6) Put(n, "MonthOfYear", Json.Long(r, "MonthOfYear", 0));
            if (Json.Str(r, "PatternStartDate") != null) n["PatternStartDate"] = Json.Str(r, "PatternStartDate").Substring(0, 10);
            if (Json.Bool(r, "NoEndDate") || (Json.Str(r, "PatternEndDate") == null && Json.Long(r, "Occurrences", 0) == 0)) n["NoEndDate"] = true;
            else if (Json.Long(r, "Occurrences", 0) > 0) n["Occurrences"] = Json.Long(r, "Occurrences", 0);
            else n["PatternEndDate"] = Json.Str(r, "PatternEndDate").Substring(0, 10);
            return n;
        }

        static void Put(Dictionary<string, object> d, string key, long v) { if (v != 0) d[key] = v; }

        static object[] NormalizeExceptions(object[] exceptions, bool allDay)
        {
            var list = new List<Dictionary<string, object>>();
            foreach (var e in exceptions.OfType<Dictionary<string, object>>())
            {
                var original = Json.Str(e, "OriginalDate");
                if (original == null) continue;
                var n = Json.O("OriginalDate", allDay ? original.Substring(0, 10) : Late.ParseLocal(original).ToString(Late.LocalFormat, CultureInfo.InvariantCulture));
                if (Json.Bool(e, "Deleted")) n["Deleted"] = true;
                else
                {
                    foreach (var k in ExceptionKeys)
                    {
                        object v;
                        if (!e.TryGetValue(k, out v) || v == null) continue;
                        if ((k == "Start" || k == "End") && v is string) v = allDay ? ((string)v).Substring(0, 10) : Late.ParseLocal((string)v).ToString(Late.LocalFormat, CultureInfo.InvariantCulture);
                        if (k == "Body" && v is string) v = ((string)v).Replace("\r\n", "\n").TrimEnd('\n');
                        n[k] = Json.Normalize(v);
                    }
                }
                list.Add(n);
            }
            return list.OrderBy(x => (string)x["OriginalDate"], StringComparer.Ordinal).Cast<object>().ToArray();
        }

        // ---- reading an item ----

        public static void Read(OutlookContext ctx, dynamic item, ItemClass cls, Dictionary<string, object> into)
        {
            switch (cls)
            {
                case ItemClass.Appointment:
                    ReadTimes(item, into);
                    if ((bool)item.IsRecurring) ReadRecurrence(ctx, item, into, true);
                    ReadRecipients(item, into);
                    break;
                case ItemClass.Task:
                    if ((bool)item.IsRecurring) ReadRecurrence(ctx, item, into, false);
                    break;
                case ItemClass.Contact:
                    if ((bool)item.HasPicture) into["HasPicture"] = true;
                    break;
                case ItemClass.DistList:
                    var members = new List<object>();
                    int count = (int)item.MemberCount;
                    for (int i = 1; i <= count; i++)
                    {
                        dynamic r = item.GetMember(i);
                        members.Add(Json.O("Name", (string)r.Name, "Address", (string)r.Address));
                        Late.Release(r);
                    }
                    var normalized = NormalizeMembers(members.ToArray());
                    if (normalized.Length > 0) into["Members"] = normalized;
                    break;
            }
        }

        static void ReadTimes(dynamic item, Dictionary<string, object> into)
        {
            if ((bool)item.AllDayEvent)
            {
                into["AllDayEvent"] = true;
                into["Start"] = ((DateTime)item.Start).ToString(Late.DateFormat, CultureInfo.InvariantCulture);
                into["End"] = ((DateTime)item.End).ToString(Late.DateFormat, CultureInfo.InvariantCulture);
                return;
            }
            dynamic startZone = item.StartTimeZone;
            dynamic endZone = item.EndTimeZone;
            into["Start"] = ((DateTime)item.StartInStartTimeZone).ToString(Late.LocalFormat, CultureInfo.InvariantCulture);
            into["End"] = ((DateTime)item.EndInEndTimeZone).ToString(Late.LocalFormat, CultureInfo.InvariantCulture);
            into["StartTimeZone"] = (string)startZone.ID;
            into["EndTimeZone"] = (string)endZone.ID;
            Late.Release(startZone);
            Late.Release(endZone);
        }

        static void ReadRecurrence(OutlookContext ctx, dynamic item, Dictionary<string, object> into, bool exceptions)
        {
            dynamic p = item.GetRecurrencePattern();
            var r = Json.O("RecurrenceType", (long)(int)p.RecurrenceType, "Interval", (long)(int)p.Interval,
                "DayOfWeekMask", (long)(int)p.DayOfWeekMask, "DayOfMonth", (long)(int)p.DayOfMonth, "Instance", (long)(int)p.Instance,
                "MonthOfYear", (long)(int)p.MonthOfYear,
                "PatternStartDate", ((DateTime)p.PatternStartDate).ToString(Late.DateFormat, CultureInfo.InvariantCulture));
            // Outlook fills both Occurrences and PatternEndDate of an ending series and does not say
            // which one the user chose: the count is read (an UNTIL series reads back as a COUNT).
            if ((bool)p.NoEndDate) r["NoEndDate"] = true;
            else if ((int)p.Occurrences > 0) r["Occurrences"] = (long)(int)p.Occurrences;
            else if (!Late.IsNoDate((DateTime)p.PatternEndDate)) r["PatternEndDate"] = ((DateTime)p.PatternEndDate).ToString(Late.DateFormat, CultureInfo.InvariantCulture);
            else r["NoEndDate"] = true;
            into["Recurrence"] = NormalizeRecurrence(r);
            if (exceptions)
            {
                var list = ReadExceptions(ctx, item, p, Json.Bool(into, "AllDayEvent"), into);
                if (list.Length > 0) into["Exceptions"] = list;
            }
            Late.Release(p);
        }

        static object[] ReadExceptions(OutlookContext ctx, dynamic item, dynamic pattern, bool allDay, Dictionary<string, object> master)
        {
            var result = new List<object>();
            dynamic zones = ctx.Application.TimeZones;
            dynamic local = zones.CurrentTimeZone;
            dynamic startZone = item.StartTimeZone;
            dynamic exceptions = pattern.Exceptions;
            int count = (int)exceptions.Count;
            for (int i = 1; i <= count; i++)
            {
                dynamic e = exceptions[i];
                DateTime original = (DateTime)e.OriginalDate;
                var when = allDay ? original.ToString(Late.DateFormat, CultureInfo.InvariantCulture)
                    : ((DateTime)zones.ConvertTime(original, local, startZone)).ToString(Late.LocalFormat, CultureInfo.InvariantCulture);
                var x = Json.O("OriginalDate", when);
                if ((bool)e.Deleted) x["Deleted"] = true;
                else
                {
                    dynamic occurrence = e.AppointmentItem;
                    var f = new Dictionary<string, object>();
                    PropertyTable.Read(occurrence, ItemClass.Appointment, f);
                    ReadTimes(occurrence, f);
                    // A moved or resized occurrence carries both its times; the other fields only when they differ.
                    bool moved = Json.Str(f, "Start") != when || Span(f) != Span(master);
                    foreach (var k in ExceptionKeys)
                    {
                        object v;
                        f.TryGetValue(k, out v);
                        object m;
                        master.TryGetValue(k, out m);
                        if (k == "Start" || k == "End") { if (!moved) continue; }
                        else if (Json.Canonical(v) == Json.Canonical(m)) continue;
                        if (v != null) x[k] = v;
                    }
                    Late.Release(occurrence);
                }
                result.Add(x);
                Late.Release(e);
            }
            Late.Release(exceptions);
            Late.Release(startZone);
            Late.Release(local);
            Late.Release(zones);
            return NormalizeExceptions(result.ToArray(), allDay);
        }

        // The length of an appointment from its Start/End fields (dates or local times).
        static TimeSpan Span(Dictionary<string, object> f)
        {
            var start = Json.Str(f, "Start");
            var end = Json.Str(f, "End");
            if (start == null || end == null) return TimeSpan.Zero;
            return Late.ParseLocal(end) - Late.ParseLocal(start);
        }

        static void ReadRecipients(dynamic item, Dictionary<string, object> into)
        {
            dynamic recipients = item.Recipients;
            int count = (int)recipients.Count;
            var list = new List<object>();
            for (int i = 1; i <= count; i++)
            {
                dynamic r = recipients[i];
                list.Add(Json.O("Name", (string)r.Name, "Address", (string)r.Address, "Type", (long)(int)r.Type));
                Late.Release(r);
            }
            Late.Release(recipients);
            if (list.Count == 0) return;
            var f = new Dictionary<string, object> { { "Recipients", list.ToArray() } };
            var n = new Dictionary<string, object>();
            Normalize(ItemClass.Appointment, f, n);
            if (n.ContainsKey("Recipients")) into["Recipients"] = n["Recipients"];
        }

        // ---- writing an item ----

        /// <summary>Before the item's first Save: times, recurrence pattern, recipients, members, picture.</summary>
        /// <returns>true when exceptions must be written after a Save (GetOccurrence needs a saved master)</returns>
        public static bool WriteBeforeSave(OutlookContext ctx, dynamic item, ItemClass cls, Dictionary<string, object> want,
            Dictionary<string, object> current, RemoteItem remote)
        {
            switch (cls)
            {
                case ItemClass.Appointment:
                    bool timesChanged = !Same(want, current, "AllDayEvent", "Start", "End", "StartTimeZone", "EndTimeZone");
                    bool patternChanged = !Same(want, current, "Recurrence");
                    bool exceptionsChanged = !Same(want, current, "Exceptions");
                    bool rewrite = timesChanged || patternChanged || (exceptionsChanged && !ExceptionsOnlyAdded(want, current));
                    if (rewrite && (bool)item.IsRecurring) item.ClearRecurrencePattern();
                    if (rewrite || timesChanged) WriteTimes(ctx, item, want);
                    if (rewrite && want.ContainsKey("Recurrence")) WritePattern(item, Json.Obj(want, "Recurrence"));
                    if (!Same(want, current, "Recipients")) WriteRecipients(item, Json.Arr(want, "Recipients"));
                    return want.ContainsKey("Exceptions") && (rewrite || exceptionsChanged);
                case ItemClass.Task:
                    if (!Same(want, current, "Recurrence"))
                    {
                        if ((bool)item.IsRecurring) item.ClearRecurrencePattern();
                        if (want.ContainsKey("Recurrence")) WritePattern(item, Json.Obj(want, "Recurrence"));
                    }
                    return false;
                case ItemClass.Contact:
                    if (remote != null && remote.Photo != null) AddPicture(item, remote.Photo);
                    else if (!want.ContainsKey("HasPicture") && (bool)item.HasPicture) item.RemovePicture();
                    return false;
                case ItemClass.DistList:
                    if (!Same(want, current, "Members")) WriteMembers(ctx, item, Json.Arr(want, "Members"));
                    return false;
                default:
                    return false;
            }
        }

        static bool Same(Dictionary<string, object> a, Dictionary<string, object> b, params string[] keys)
        {
            foreach (var k in keys)
            {
                object x = null, y = null;
                if (a != null) a.TryGetValue(k, out x);
                if (b != null) b.TryGetValue(k, out y);
                if (Json.Canonical(x) != Json.Canonical(y)) return false;
            }
            return true;
        }

        // New exceptions on an unchanged series are written alone; a restored occurrence needs the series rewritten.
        static bool ExceptionsOnlyAdded(Dictionary<string, object> want, Dictionary<string, object> current)
        {
            var wanted = new HashSet<string>(Json.Arr(want, "Exceptions").Select(Json.Canonical));
            return Json.Arr(current, "Exceptions").All(e => wanted.Contains(Json.Canonical(e)));
        }

        /// <summary>After the master was saved: each exception not yet on the item.</summary>
        public static void WriteExceptions(OutlookContext ctx, dynamic item, Dictionary<string, object> want, Dictionary<string, object> current)
        {
            var have = new HashSet<string>(Json.Arr(current, "Exceptions").Select(Json.Canonical));
            bool allDay = Json.Bool(want, "AllDayEvent");
            dynamic zones = ctx.Application.TimeZones;
            dynamic local = zones.CurrentTimeZone;
            dynamic startZone = item.StartTimeZone;
            dynamic pattern = item.GetRecurrencePattern();
            try
            {
                foreach (var e in Json.Arr(want, "Exceptions").OfType<Dictionary<string, object>>())
                {
                    if (have.Contains(Json.Canonical(e))) continue;
                    var original = Late.ParseLocal(Json.Str(e, "OriginalDate"));
                    DateTime at = allDay ? original.Date.Add(((DateTime)item.Start).TimeOfDay) : (DateTime)zones.ConvertTime(original, startZone, local);
                    dynamic occurrence = pattern.GetOccurrence(at);
                    if (Json.Bool(e, "Deleted")) occurrence.Delete();
                    else
                    {
                        foreach (var p in PropertyTable.Tables[ItemClass.Appointment])
                            if (e.ContainsKey(p.Key) && ExceptionKeys.Contains(p.Key)) PropertyTable.WriteOne(occurrence, p, e[p.Key]);
                        if (e.ContainsKey("Start") || e.ContainsKey("End"))
                        {
                            var times = Json.O("AllDayEvent", Json.Bool(e, "AllDayEvent") || allDay,
                                "Start", Json.Str(e, "Start") ?? Json.Str(e, "OriginalDate"), "End", Json.Str(e, "End"),
                                "StartTimeZone", Json.Str(want, "StartTimeZone"), "EndTimeZone", Json.Str(want, "EndTimeZone"));
                            if (times["End"] == null) times.Remove("End");
                            WriteTimes(ctx, occurrence, times);
                        }
                        occurrence.Save();
                    }
                    Late.Release(occurrence);
                }
            }
            finally
            {
                Late.Release(pattern);
                Late.Release(startZone);
                Late.Release(local);
                Late.Release(zones);
            }
        }

        static void WriteTimes(OutlookContext ctx, dynamic item, Dictionary<string, object> want)
        {
            bool allDay = Json.Bool(want, "AllDayEvent");
            item.AllDayEvent = allDay;
            var start = Json.Str(want, "Start");
            var end = Json.Str(want, "End");
            if (allDay)
            {
                if (start != null) item.Start = Late.ParseDate(start);
                if (end != null) item.End = Late.ParseDate(end);
                return;
            }
            dynamic zones = ctx.Application.TimeZones;
            dynamic startZone = Zone(zones, Json.Str(want, "StartTimeZone"));
            dynamic endZone = Zone(zones, Json.Str(want, "EndTimeZone") ?? Json.Str(want, "StartTimeZone"));
            item.StartTimeZone = startZone;
            item.EndTimeZone = endZone;
            if (start != null) item.StartInStartTimeZone = Late.ParseLocal(start);
            if (end != null) item.EndInEndTimeZone = Late.ParseLocal(end);
            Late.Release(startZone);
            Late.Release(endZone);
            Late.Release(zones);
        }

        // Windows zone IDs are Outlook's own (TimeZones[id]); a floating time takes the machine's zone.
        static dynamic Zone(dynamic zones, string id)
        {
            if (id != null)
            {
                try { return zones[id]; }
                catch (Exception) { } // an ID this Windows does not know: the machine's zone
            }
            return zones.CurrentTimeZone;
        }

        static void WritePattern(dynamic item, Dictionary<string, object> r)
        {
            dynamic p = item.GetRecurrencePattern();
            long type = Json.Long(r, "RecurrenceType", 0);
            p.RecurrenceType = (int)type;
            if (type == 1 || type == 3 || type == 6) p.DayOfWeekMask = (int)Json.Long(r, "DayOfWeekMask", 0);
            if (type == 2 || type == 5) p.DayOfMonth = (int)Json.Long(r, "DayOfMonth", 1);
            if (type == 3 || type == 6) p.Instance = (int)Json.Long(r, "Instance", 1);
            if (type == 5 || type == 6) p.MonthOfYear = (int)Json.Long(r, "MonthOfYear", 1);
            p.Interval = (int)Json.Long(r, "Interval", 1);
            if (Json.Str(r, "PatternStartDate") != null) p.PatternStartDate = Late.ParseDate(Json.Str(r, "PatternStartDate"));
            if (Json.Bool(r, "NoEndDate")) p.NoEndDate = true;
            else if (Json.Long(r, "Occurrences", 0) > 0) p.Occurrences = (int)Json.Long(r, "Occurrences", 0);
            else if (Json.Str(r, "PatternEndDate") != null) p.PatternEndDate = Late.ParseDate(Json.Str(r, "PatternEndDate"));
            Late.Release(p);
        }

        static string Display(Dictionary<string, object> r)
        {
            var name = Json.Str(r, "Name");
            var address = Json.Str(r, "Address");
            if (address == null) return name;
            return name == null ? address : name + " <" + address + ">";
        }

        static void WriteRecipients(dynamic item, object[] wanted)
        {
            dynamic recipients = item.Recipients;
            for (int i = (int)recipients.Count; i >= 1; i--) recipients.Remove(i);
            foreach (var r in wanted.OfType<Dictionary<string, object>>())
            {
                dynamic added = recipients.Add(Display(r));
                added.Type = (int)Json.Long(r, "Type", 1);
                Late.Release(added);
            }
            Late.Release(recipients);
        }

        static void WriteMembers(OutlookContext ctx, dynamic item, object[] wanted)
        {
            for (int i = (int)item.MemberCount; i >= 1; i--)
            {
                dynamic r = item.GetMember(i);
                item.RemoveMember(r);
                Late.Release(r);
            }
            foreach (var m in wanted.OfType<Dictionary<string, object>>())
            {
                dynamic r = ctx.Session.CreateRecipient(Display(m));
                r.Resolve();
                item.AddMember(r);
                Late.Release(r);
            }
        }

        static void AddPicture(dynamic item, byte[] photo)
        {
            // ContactItem.AddPicture takes a file path.
            var path = Path.Combine(Path.GetTempPath(), "opconnect-" + Guid.NewGuid().ToString("N") + ".jpg");
            File.WriteAllBytes(path, photo);
            try { item.AddPicture(path); }
            finally { File.Delete(path); }
        }

        /// <summary>The contact picture as {mime, data (base64)}, or null (ContactPicture.jpg, Outlook's attachment name).</summary>
        public static Dictionary<string, object> ReadPicture(dynamic item)
        {
            if (!(bool)item.HasPicture) return null;
            dynamic attachments = item.Attachments;
            try
            {
                int count = (int)attachments.Count;
                for (int i = 1; i <= count; i++)
                {
                    dynamic a = attachments[i];
                    try
                    {
                        if ((string)a.FileName != "ContactPicture.jpg") continue;
                        var path = Path.Combine(Path.GetTempPath(), "opconnect-" + Guid.NewGuid().ToString("N") + ".jpg");
                        a.SaveAsFile(path);
                        try { return Json.O("mime", "image/jpeg", "data", Convert.ToBase64String(File.ReadAllBytes(path))); }
                        finally { File.Delete(path); }
                    }
                    finally { Late.Release(a); }
                }
                return null;
            }
            finally { Late.Release(attachments); }
        }
    }
}
