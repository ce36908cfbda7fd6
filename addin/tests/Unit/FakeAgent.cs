// An in-memory agent speaking the CONTRACT's methods (items.changes/get/create/patch/delete,
// contacts.photo, notes.*, status, calendar.list, contacts.books) for engine tests without I/O.
// It can be told to fail (the connection lost) after N calls, as an agent restart would.
using System;
using System.Collections.Generic;
using System.Linq;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Tests
{
    public class FakeAgent : IAgent
    {
        public class Stored
        {
            public string Href, Etag, Class, Collection;
            public Dictionary<string, object> Fields;
            public long Seq;
        }

        public readonly Dictionary<string, Stored> Items = new Dictionary<string, Stored>();
        public readonly List<Tuple<string, long>> Removed = new List<Tuple<string, long>>();
        public readonly List<string> Calls = new List<string>();
        public readonly List<Dictionary<string, object>> Calendars = new List<Dictionary<string, object>>();
        public readonly List<Dictionary<string, object>> Books = new List<Dictionary<string, object>>();
        public bool Imap;
        public long HeldRemovals;
        /// <summary>When ≥ 0: calls after this many more succeed by the agent but the answer is lost (AgentUnavailable).</summary>
        public int LoseAnswersAfter = -1;
        long seq;
        int etags;

        public FakeAgent Calendar(string href, params string[] components)
        {
            Calendars.Add(Json.O("href", href, "name", href.Trim('/').Split('/').Last(), "components", components.Cast<object>().ToArray(),
                "kind", components.Contains("VEVENT") ? "calendar" : "tasks", "read_only", false));
            return this;
        }

        public FakeAgent Book(string href)
        {
            Books.Add(Json.O("href", href, "name", href.Trim('/').Split('/').Last(), "read_only", false, "directory", false));
            return this;
        }

        public int Count(string method) { return Calls.Count(c => c == method); }

        public Stored Put(string collection, string cls, Dictionary<string, object> fields, string uid = null)
        {
            uid = uid ?? Guid.NewGuid().ToString();
            var copy = new Dictionary<string, object>(fields);
            copy["GlobalUid"] = uid;
            var s = new Stored { Href = collection + uid + (cls == "contact" || cls == "distlist" ? ".vcf" : ".ics"), Etag = "\"" + (++etags) + "\"",
                Class = cls, Collection = collection, Fields = copy, Seq = ++seq };
            Items[s.Href] = s;
            return s;
        }

        public void Change(string href, string key, object value)
        {
            var s = Items[href];
            s.Fields[key] = value;
            s.Etag = "\"" + (++etags) + "\"";
            s.Seq = ++seq;
        }

        public void Remove(string href)
        {
            Items.Remove(href);
            Removed.Add(Tuple.Create(href, ++seq));
        }

        public object Call(string method, Dictionary<string, object> p)
        {
            Calls.Add(method);
            var answer = Answer(method, p ?? new Dictionary<string, object>());
            if (LoseAnswersAfter == 0) throw new AgentUnavailableException("connection lost (test)");
            if (LoseAnswersAfter > 0) LoseAnswersAfter--;
            return answer;
        }

        object Answer(string method, Dictionary<string, object> p)
        {
            switch (method)
            {
                case "status":
                    var services = Json.O("caldav", "x", "carddav", "x");
                    if (Imap) services["imap"] = "x";
                    return Json.O("paused", false, "accounts", new object[] { Json.O("name", "alice", "state", "online", "pending_ops", 0L, "conflicts", 0L, "services", services) });
                case "calendar.list":
                    return Calendars.Select(c => { var d = new Dictionary<string, object>(c); if (HeldRemovals > 0) d["held_removals"] = HeldRemovals; return (object)d; }).ToArray();
                case "contacts.books":
                    return Books.Cast<object>().ToArray();
                case "items.changes":
                {
                    var collection = Json.Str(p, "collection");
                    long since = Json.Str(p, "cursor") == null ? 0 : long.Parse(Json.Str(p, "cursor"));
                    int limit = (int)Json.Long(p, "limit", 200);
                    var changed = Items.Values.Where(i => i.Collection == collection && i.Seq > since).OrderBy(i => i.Seq).Take(limit).ToList();
                    var removed = since == 0 ? new List<string>() : Removed.Where(r => r.Item2 > since && r.Item1.StartsWith(collection)).Select(r => r.Item1).ToList();
                    bool more = Items.Values.Count(i => i.Collection == collection && i.Seq > since) > changed.Count;
                    long cursor = more ? changed.Last().Seq : seq;
                    return Json.O("items", changed.Select(i => (object)Json.O("href", i.Href, "etag", i.Etag, "class", i.Class, "fields", Copy(i.Fields))).ToArray(),
                        "removed", removed.Cast<object>().ToArray(), "cursor", cursor.ToString(), "more", more);
                }
                case "items.get":
                {
                    Stored s;
                    if (!Items.TryGetValue(Json.Str(p, "href"), out s)) throw new AgentError(5, "not found");
                    return Json.O("href", s.Href, "etag", s.Etag, "class", s.Class, "fields", Copy(s.Fields));
                }
                case "items.create":
                {
                    var fields = Json.Obj(p, "fields");
                    var uid = Json.Str(fields, "GlobalUid");
                    if (uid != null && Items.Values.Any(i => Json.Str(i.Fields, "GlobalUid") == uid)) throw new AgentError(6, "an item with this UID exists");
                    var s = Put(Json.Str(p, "collection"), Json.Str(p, "class"), fields, uid);
                    return Json.O("op", (long)s.Seq, "href", s.Href, "uid", uid);
                }
                case "items.patch":
                {
                    Stored s;
                    if (!Items.TryGetValue(Json.Str(p, "href"), out s)) throw new AgentError(5, "not found");
                    if (Json.Str(p, "etag") != s.Etag) ConflictsSeen++;
                    foreach (var kv in Json.Obj(p, "changes"))
                    {
                        if (kv.Value == null) s.Fields.Remove(kv.Key); else s.Fields[kv.Key] = kv.Value;
                    }
                    s.Etag = "\"" + (++etags) + "\"";
                    s.Seq = ++seq;
                    return Json.O("op", s.Seq);
                }
                case "items.delete":
                    if (!Items.ContainsKey(Json.Str(p, "href"))) throw new AgentError(5, "not found");
                    Remove(Json.Str(p, "href"));
                    return Json.O("op", seq);
                case "contacts.photo":
                    return Json.O("mime", "image/jpeg", "data", Convert.ToBase64String(new byte[] { 0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3 }));
                case "notes.list":
                    return Items.Values.Where(i => i.Class == "note").Select(i => (object)Json.O("id", i.Href, "subject", "", "body", "",
                        "modified", i.Etag, "fields", Copy(i.Fields))).ToArray();
                case "notes.put":
                {
                    var body = Json.Str(p, "subject") + (Json.Str(p, "body") != "" ? "\n" + Json.Str(p, "body") : "");
                    var id = Json.Str(p, "id");
                    if (id == null) { var s = Put("notes:", "note", Json.O("Body", body)); return Json.O("op", s.Seq, "id", s.Href); }
                    Change(id, "Body", body);
                    return Json.O("op", seq, "id", id);
                }
                case "notes.delete":
                    Remove(Json.Str(p, "id"));
                    return Json.O("op", seq);
                case "sync": case "pause": case "resume": case "ooo.set": case "conflicts.resolve":
                    return Json.O();
                case "ooo.get":
                    return Json.O("enabled", false, "subject", "Away", "body", "Back Monday");
                case "conflicts.list":
                    return new object[] { Json.O("id", 7L, "account", "alice", "kind", "calendar", "summary", "Lunch changed on both sides", "detected", "2026-12-03T10:00:00Z") };
                default:
                    throw new AgentError(-32601, "unknown method " + method);
            }
        }

        public int ConflictsSeen;

        static Dictionary<string, object> Copy(Dictionary<string, object> d)
        {
            return Json.ParseObject(Json.Write(d));
        }
    }
}
