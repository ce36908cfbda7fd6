// The stand-in's items: AppointmentItem, TaskItem, ContactItem, DistListItem, NoteItem with the
// members the add-in uses, under Outlook's names and with Outlook's defaults (no date = 4501-01-01).
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace OpConnect.Outlook.Standin
{
    public abstract class ItemBase
    {
        internal readonly Application App;
        internal readonly Folder Folder;
        internal bool Dirty;
        public static readonly DateTime NoDate = new DateTime(4501, 1, 1);

        protected ItemBase(Application app, Folder folder)
        {
            App = app;
            Folder = folder;
            PropertyAccessor = new PropertyAccessor(app, this);
            Body = "";
            Categories = "";
        }

        public string EntryID { get; private set; }
        public DateTime LastModificationTime { get; private set; }
        public abstract string MessageClass { get; }
        public virtual string Body { get; set; }
        public string Categories { get; set; }
        public PropertyAccessor PropertyAccessor { get; private set; }
        public Folder Parent { get { return Folder; } }

        public virtual void Save()
        {
            App.Check("Save");
            if (EntryID == null)
            {
                EntryID = App.NewEntryId();
                App.Items[EntryID] = this;
                Folder.Contents.Add(this);
            }
            LastModificationTime = App.Tick();
            Dirty = false;
        }

        public virtual void Delete()
        {
            App.Check("Delete");
            if (EntryID == null) return;
            App.Items.Remove(EntryID);
            Folder.Contents.Remove(this);
        }

        /// <summary>What Outlook does when a reminder is dismissed or an item is coloured: LastModificationTime moves, fields stay.</summary>
        public void DismissReminder() { LastModificationTime = App.Tick(); }

        internal object Column(string name)
        {
            switch (name)
            {
                case "EntryID": return EntryID;
                case "LastModificationTime": return LastModificationTime;
                case "MessageClass": return MessageClass;
                case "CreationTime": return LastModificationTime;
                case "Subject": return GetType().GetProperty("Subject") != null ? GetType().GetProperty("Subject").GetValue(this, null) : null;
                default:
                    object v;
                    return PropertyAccessor.Values.TryGetValue(name, out v) ? v : null;
            }
        }

        /// <summary>A named property (the add-in's link), or null.</summary>
        public string Named(string name)
        {
            return PropertyAccessor.Values.Where(kv => kv.Key.Contains("/" + name + "/") || kv.Key.EndsWith("/" + name))
                .Select(kv => kv.Value as string).FirstOrDefault();
        }
    }

    public class AppointmentItem : ItemBase
    {
        DateTime startUtc, endUtc;
        bool allDay;
        internal RecurrencePattern Pattern;

        public AppointmentItem(Application app, Folder folder) : base(app, folder)
        {
            Subject = ""; Location = ""; Organizer = "";
            BusyStatus = 2; Importance = 1; ReminderSet = true; ReminderMinutesBeforeStart = 15;
            StartTimeZone = app.TimeZones.CurrentTimeZone;
            EndTimeZone = app.TimeZones.CurrentTimeZone;
            var start = new DateTime(2026, 12, 1, 9, 0, 0);
            startUtc = app.TimeZones.ToUtc(start, StartTimeZone);
            endUtc = startUtc.AddMinutes(30);
            Recipients = new Recipients(app);
        }

        public override string MessageClass { get { return "IPM.Appointment"; } }
        public string Subject { get; set; }
        public string Location { get; set; }
        public string Organizer { get; set; }
        public int Sensitivity { get; set; }
        public int Importance { get; set; }
        public int BusyStatus { get; set; }
        public int MeetingStatus { get; set; }
        public bool ReminderSet { get; set; }
        public int ReminderMinutesBeforeStart { get; set; }
        public Recipients Recipients { get; private set; }
        public OutlookTimeZone StartTimeZone { get; set; }
        public OutlookTimeZone EndTimeZone { get; set; }

        public bool AllDayEvent
        {
            get { return allDay; }
            set
            {
                allDay = value;
                if (value)
                {
                    var s = Start.Date;
                    Start = s;
                    End = End.Date > s ? End.Date : s.AddDays(1);
                }
            }
        }

        /// <summary>In the machine's time zone (Outlook's Start); setting it keeps the duration.</summary>
        public DateTime Start
        {
            get { return App.TimeZones.FromUtc(startUtc, App.TimeZones.CurrentTimeZone); }
            set { var d = endUtc - startUtc; startUtc = App.TimeZones.ToUtc(value, App.TimeZones.CurrentTimeZone); endUtc = startUtc + d; }
        }

        public DateTime End
        {
            get { return App.TimeZones.FromUtc(endUtc, App.TimeZones.CurrentTimeZone); }
            set { endUtc = App.TimeZones.ToUtc(value, App.TimeZones.CurrentTimeZone); }
        }

        public DateTime StartInStartTimeZone
        {
            get { return App.TimeZones.FromUtc(startUtc, StartTimeZone); }
            set { var d = endUtc - startUtc; startUtc = App.TimeZones.ToUtc(value, StartTimeZone); endUtc = startUtc + d; }
        }

        public DateTime EndInEndTimeZone
        {
            get { return App.TimeZones.FromUtc(endUtc, EndTimeZone); }
            set { endUtc = App.TimeZones.ToUtc(value, EndTimeZone); }
        }

        public DateTime StartUTC { get { return startUtc; } }
        public DateTime EndUTC { get { return endUtc; } }

        public bool IsRecurring { get { return Pattern != null; } }

        public virtual RecurrencePattern GetRecurrencePattern()
        {
            App.Check("GetRecurrencePattern");
            if (Pattern == null) Pattern = new RecurrencePattern(this);
            return Pattern;
        }

        public void ClearRecurrencePattern()
        {
            App.Check("ClearRecurrencePattern");
            Pattern = null;
        }

        internal AppointmentItem CopyAt(DateTime localStart)
        {
            var o = new Occurrence(App, Folder, this, localStart);
            return o;
        }
    }

    /// <summary>One occurrence of a series (GetOccurrence, Exception.AppointmentItem).</summary>
    public class Occurrence : AppointmentItem
    {
        readonly AppointmentItem master;
        readonly DateTime original;

        internal Occurrence(Application app, Folder folder, AppointmentItem master, DateTime originalLocal) : base(app, folder)
        {
            this.master = master;
            original = originalLocal;
            Subject = master.Subject; Location = master.Location; Body = master.Body; BusyStatus = master.BusyStatus;
            StartTimeZone = master.StartTimeZone; EndTimeZone = master.EndTimeZone;
            var duration = master.End - master.Start;
            AllDayEvent = master.AllDayEvent;
            Start = originalLocal;
            End = originalLocal + duration;
        }

        public override RecurrencePattern GetRecurrencePattern() { throw new InvalidOperationException("an occurrence has no pattern"); }

        public override void Save()
        {
            App.Check("Occurrence.Save");
            master.Pattern.SetException(original, this, false);
        }

        public override void Delete()
        {
            App.Check("Occurrence.Delete");
            master.Pattern.SetException(original, null, true);
        }
    }

    public class RecurrencePattern
    {
        readonly AppointmentItem master;
        internal readonly List<RecurrenceException> List = new List<RecurrenceException>();

        internal RecurrencePattern(AppointmentItem master) { this.master = master; Interval = 1; PatternStartDate = master.Start.Date; NoEndDate = true; PatternEndDate = ItemBase.NoDate; }
        internal RecurrencePattern(TaskItem task) { Interval = 1; PatternStartDate = DateTime.Today; NoEndDate = true; PatternEndDate = ItemBase.NoDate; }

        public int RecurrenceType { get; set; }
        public int Interval { get; set; }
        public int DayOfWeekMask { get; set; }
        public int DayOfMonth { get; set; }
        public int Instance { get; set; }
        public int MonthOfYear { get; set; }
        public DateTime PatternStartDate { get; set; }
        DateTime end;
        int occurrences;
        public DateTime PatternEndDate { get { return end; } set { end = value; if (value.Year < 4500) { NoEndDate = false; occurrences = 0; } } }
        public int Occurrences { get { return occurrences; } set { occurrences = value; NoEndDate = false; end = ItemBase.NoDate; } }
        public bool NoEndDate { get; set; }
        public Exceptions Exceptions { get { return new Exceptions(List); } }

        /// <summary>The occurrence starting at `localStart` (machine time); the master must be saved, as in Outlook.</summary>
        public AppointmentItem GetOccurrence(DateTime localStart)
        {
            master.App.Check("GetOccurrence");
            if (master.EntryID == null) throw new InvalidOperationException("GetOccurrence: the series must be saved first");
            if (!Occurs(localStart)) throw new ArgumentException("You changed one of the recurrences of this item, and this instance no longer exists: " + localStart.ToString("s"));
            return master.CopyAt(localStart);
        }

        bool Occurs(DateTime localStart)
        {
            if (localStart.TimeOfDay != master.Start.TimeOfDay) return false;
            if (List.Any(e => e.OriginalDate == localStart && e.Deleted)) return false;
            var days = (localStart.Date - PatternStartDate.Date).Days;
            if (days < 0) return false;
            switch (RecurrenceType)
            {
                case 0: return days % Math.Max(1, Interval) == 0;
                case 1:
                    var weeks = days / 7;
                    return weeks % Math.Max(1, Interval) == 0 && (DayOfWeekMask & (1 << (int)localStart.DayOfWeek)) != 0;
                default: return true;
            }
        }

        internal void SetException(DateTime original, AppointmentItem changed, bool deleted)
        {
            List.RemoveAll(e => e.OriginalDate == original);
            List.Add(new RecurrenceException(original, changed, deleted));
        }
    }

    public class Exceptions
    {
        readonly List<RecurrenceException> list;
        internal Exceptions(List<RecurrenceException> list) { this.list = list; }
        public int Count { get { return list.Count; } }
        public RecurrenceException this[int index] { get { return list[index - 1]; } }
    }

    /// <summary>Outlook's Exception object (renamed here: System.Exception).</summary>
    public class RecurrenceException
    {
        readonly AppointmentItem item;
        internal RecurrenceException(DateTime original, AppointmentItem item, bool deleted) { OriginalDate = original; this.item = item; Deleted = deleted; }
        public DateTime OriginalDate { get; private set; }
        public bool Deleted { get; private set; }
        public AppointmentItem AppointmentItem
        {
            get { if (Deleted) throw new InvalidOperationException("a deleted occurrence has no item"); return item; }
        }
    }

    public class Recipients
    {
        readonly Application app;
        readonly List<Recipient> list = new List<Recipient>();
        internal Recipients(Application app) { this.app = app; }
        public int Count { get { return list.Count; } }
        public Recipient this[int index] { get { return list[index - 1]; } }
        public Recipient Add(string name) { app.Check("Recipients.Add"); var r = Recipient.Parse(name); list.Add(r); return r; }
        public void Remove(int index) { list.RemoveAt(index - 1); }
    }

    public class Recipient
    {
        public string Name { get; private set; }
        public string Address { get; private set; }
        public int Type { get; set; }
        public int MeetingResponseStatus { get; set; }
        public bool Resolved { get; private set; }
        public bool Resolve() { Resolved = Address != null; return Resolved; }

        /// <summary>"Name &lt;address&gt;" or a bare SMTP address, as Outlook resolves a one-off recipient.</summary>
        internal static Recipient Parse(string text)
        {
            var r = new Recipient { Type = 1 };
            int lt = text.IndexOf('<');
            if (lt >= 0 && text.EndsWith(">")) { r.Name = text.Substring(0, lt).Trim(); r.Address = text.Substring(lt + 1, text.Length - lt - 2); }
            else { r.Name = text; r.Address = text.Contains("@") ? text : null; }
            return r;
        }
    }

    public class TaskItem : ItemBase
    {
        RecurrencePattern pattern;

        public TaskItem(Application app, Folder folder) : base(app, folder)
        {
            Subject = ""; Importance = 1;
            StartDate = NoDate; DueDate = NoDate; DateCompleted = NoDate; ReminderTime = NoDate;
        }

        public override string MessageClass { get { return "IPM.Task"; } }
        public string Subject { get; set; }
        public int Sensitivity { get; set; }
        public int Importance { get; set; }
        public DateTime StartDate { get; set; }
        public DateTime DueDate { get; set; }
        int status;
        bool complete;
        public int Status { get { return status; } set { status = value; complete = value == 2; } }
        public bool Complete { get { return complete; } set { complete = value; if (value) { status = 2; PercentComplete = 100; } else if (status == 2) status = 0; } }
        public int PercentComplete { get; set; }
        public DateTime DateCompleted { get; set; }
        public bool ReminderSet { get; set; }
        public DateTime ReminderTime { get; set; }
        public bool IsRecurring { get { return pattern != null; } }
        public RecurrencePattern GetRecurrencePattern() { App.Check("GetRecurrencePattern"); if (pattern == null) pattern = new RecurrencePattern(this); return pattern; }
        public void ClearRecurrencePattern() { pattern = null; }
    }

    public class NoteItem : ItemBase
    {
        public NoteItem(Application app, Folder folder) : base(app, folder) { }
        public override string MessageClass { get { return "IPM.StickyNote"; } }
        /// <summary>Read-only, as in Outlook: the first line of the body.</summary>
        public string Subject { get { var b = Body ?? ""; int nl = b.IndexOfAny(new[] { '\r', '\n' }); return nl < 0 ? b : b.Substring(0, nl); } }
    }

    public class DistListItem : ItemBase
    {
        readonly List<Recipient> members = new List<Recipient>();
        public DistListItem(Application app, Folder folder) : base(app, folder) { DLName = ""; }
        public override string MessageClass { get { return "IPM.DistList"; } }
        public string DLName { get; set; }
        public string Subject { get { return DLName; } }
        public int Sensitivity { get; set; }
        public int MemberCount { get { return members.Count; } }
        public Recipient GetMember(int index) { return members[index - 1]; }
        public void AddMember(Recipient r) { App.Check("AddMember"); if (!r.Resolved) throw new InvalidOperationException("AddMember needs a resolved recipient"); members.Add(r); }
        public void RemoveMember(Recipient r) { App.Check("RemoveMember"); members.Remove(r); }
    }

    public class Attachments
    {
        internal readonly List<Attachment> List = new List<Attachment>();
        public int Count { get { return List.Count; } }
        public Attachment this[int index] { get { return List[index - 1]; } }
    }

    public class Attachment
    {
        internal byte[] Bytes;
        public string FileName { get; internal set; }
        public void SaveAsFile(string path) { File.WriteAllBytes(path, Bytes); }
    }
}
