// Late binding costs most on first use: the C# runtime binder loads its tables and every call site
// compiles its first rule (measured on Mono: the first item written took 350 ms, the next 0.2 ms).
// Paid on Outlook's thread, that is a freeze; so before its first slice the engine runs every read
// and write path once on the worker thread, against a dynamic object that answers any member
// Outlook's would. It touches no Outlook object.
using System;
using System.Collections.Generic;
using System.Dynamic;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Outlook
{
    public static class WarmUp
    {
        public static void Run()
        {
            var dummy = new Dummy("IPM.Appointment");
            var ctx = new OutlookContext { Application = dummy, Session = dummy };
            foreach (var pair in new[] {
                Tuple.Create(ItemClass.Appointment, "IPM.Appointment"), Tuple.Create(ItemClass.Task, "IPM.Task"),
                Tuple.Create(ItemClass.Contact, "IPM.Contact"), Tuple.Create(ItemClass.DistList, "IPM.DistList"),
                Tuple.Create(ItemClass.Note, "IPM.StickyNote") })
            {
                try
                {
                    dynamic item = new Dummy(pair.Item2);
                    var fields = new Dictionary<string, object>();
                    PropertyTable.Read(item, pair.Item1, fields);
                    Special.Read(ctx, item, pair.Item1, fields);
                    PropertyTable.Write(item, pair.Item1, fields);
                    if (Special.WriteBeforeSave(ctx, item, pair.Item1, fields, new Dictionary<string, object>(), null))
                        Special.WriteExceptions(ctx, item, fields, new Dictionary<string, object>());
                    dynamic accessor = item.PropertyAccessor;
                    accessor.SetProperty("x", "y");
                    item.Save();
                }
                catch (Exception) { } // only a warm-up: the real call reports real errors
            }
        }

        /// <summary>Answers any member with a value of the type Outlook's member of that name has.</summary>
        class Dummy : DynamicObject
        {
            static readonly HashSet<string> Ints = new HashSet<string> { "Sensitivity", "Importance", "BusyStatus", "ReminderMinutesBeforeStart",
                "Status", "PercentComplete", "RecurrenceType", "Interval", "DayOfWeekMask", "DayOfMonth", "Instance", "MonthOfYear",
                "Occurrences", "Count", "MemberCount", "Type", "MeetingResponseStatus" };
            static readonly HashSet<string> Bools = new HashSet<string> { "AllDayEvent", "ReminderSet", "Complete", "NoEndDate",
                "HasPicture", "Deleted", "EndOfTable" };
            static readonly HashSet<string> Dates = new HashSet<string> { "Start", "End", "StartInStartTimeZone", "EndInEndTimeZone",
                "PatternStartDate", "PatternEndDate", "OriginalDate", "StartDate", "DueDate", "DateCompleted", "ReminderTime",
                "Birthday", "Anniversary", "LastModificationTime", "ConvertTime" };
            static readonly HashSet<string> Objects = new HashSet<string> { "StartTimeZone", "EndTimeZone", "Recipients", "Exceptions",
                "AppointmentItem", "PropertyAccessor", "TimeZones", "CurrentTimeZone", "Attachments", "Session", "Application",
                "GetRecurrencePattern", "GetOccurrence", "GetMember", "CreateRecipient", "Add" };
            readonly string messageClass;

            public Dummy(string messageClass) { this.messageClass = messageClass; }

            object Value(string name)
            {
                if (name == "MessageClass") return messageClass;
                if (name == "IsRecurring") return messageClass == "IPM.Appointment" || messageClass == "IPM.Task";
                if (Ints.Contains(name)) return 1;
                if (Bools.Contains(name)) return false;
                if (Dates.Contains(name)) return new DateTime(2026, 1, 5, 9, 0, 0);
                if (Objects.Contains(name)) return new Dummy(messageClass);
                return "x";
            }

            public override bool TryGetMember(GetMemberBinder binder, out object result) { result = Value(binder.Name); return true; }
            public override bool TrySetMember(SetMemberBinder binder, object value) { return true; }
            public override bool TryGetIndex(GetIndexBinder binder, object[] indexes, out object result) { result = new Dummy(messageClass); return true; }
            public override bool TryInvokeMember(InvokeMemberBinder binder, object[] args, out object result)
            {
                result = binder.Name == "GetProperty" ? "x" : binder.Name == "Resolve" ? (object)true : Value(binder.Name);
                return true;
            }
        }
    }
}
