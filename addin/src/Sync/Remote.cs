// The agent's collections over IPC, as CONTRACT.md names them: items.changes/get/create/patch/delete
// and contacts.photo for calendars, task lists and address books; notes.list/put/delete for notes.
using System;
using System.Collections.Generic;
using System.Linq;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Sync
{
    public class DavCollection : IRemoteCollection
    {
        /// <summary>CONTRACT: at most 1000 per page; large pages mean fewer round trips on a first sync.</summary>
        public const int PageSize = 1000;
        readonly IAgent agent;
        readonly string account;
        readonly string collection;

        public DavCollection(IAgent agent, string account, string collection)
        {
            this.agent = agent;
            this.account = account;
            this.collection = collection;
        }

        public RemoteChanges Changes(string cursor)
        {
            var changes = new RemoteChanges { Complete = cursor == null };
            while (true)
            {
                var p = Json.O("account", account, "collection", collection, "limit", PageSize);
                if (cursor != null) p["cursor"] = cursor;
                var page = agent.Call("items.changes", p) as Dictionary<string, object>;
                foreach (var raw in Json.Arr(page, "items").OfType<Dictionary<string, object>>())
                {
                    var item = Item(raw);
                    if (item != null) changes.Items.Add(item);
                }
                changes.Removed.AddRange(Json.Arr(page, "removed").OfType<string>());
                cursor = Json.Str(page, "cursor") ?? cursor;
                if (!Json.Bool(page, "more")) break;
            }
            changes.Cursor = cursor;
            return changes;
        }

        public static RemoteItem Item(Dictionary<string, object> raw)
        {
            var cls = ItemClasses.Parse(Json.Str(raw, "class"));
            if (cls == null) return null;
            return new RemoteItem
            {
                Href = Json.Str(raw, "href"),
                Etag = Json.Str(raw, "etag"),
                Class = cls.Value,
                Fields = Json.Obj(raw, "fields") ?? new Dictionary<string, object>(),
                Error = Json.Str(raw, "error"),
            };
        }

        public RemoteItem Get(string href)
        {
            try
            {
                return Item(agent.Call("items.get", Json.O("account", account, "href", href)) as Dictionary<string, object>);
            }
            catch (AgentError e)
            {
                if (e.Code == 5) return null; // not found
                throw;
            }
        }

        public CreateResult Create(ItemClass cls, Dictionary<string, object> fields, string uid)
        {
            var withUid = new Dictionary<string, object>(fields);
            withUid["GlobalUid"] = uid;
            var answer = agent.Call("items.create", Json.O("account", account, "collection", collection,
                "class", ItemClasses.Wire(cls), "fields", withUid)) as Dictionary<string, object>;
            return new CreateResult { Href = Json.Str(answer, "href"), Uid = Json.Str(answer, "uid") ?? uid };
        }

        public void Patch(string href, string etag, Dictionary<string, object> changes, Dictionary<string, object> whole)
        {
            agent.Call("items.patch", Json.O("account", account, "href", href, "etag", etag, "changes", changes));
        }

        public void Delete(string href, string etag)
        {
            var p = Json.O("account", account, "href", href);
            if (etag != null) p["etag"] = etag;
            agent.Call("items.delete", p);
        }

        public Tuple<string, byte[]> Photo(string href)
        {
            var answer = agent.Call("contacts.photo", Json.O("account", account, "href", href)) as Dictionary<string, object>;
            if (answer == null || Json.Str(answer, "data") == null) return null;
            return Tuple.Create(Json.Str(answer, "mime") ?? "image/jpeg", Convert.FromBase64String(Json.Str(answer, "data")));
        }
    }

    /// <summary>The IMAP folder Notes: no cursor, the whole list each time; `modified` serves as the etag.</summary>
    public class NotesCollection : IRemoteCollection
    {
        readonly IAgent agent;
        readonly string account;

        public NotesCollection(IAgent agent, string account)
        {
            this.agent = agent;
            this.account = account;
        }

        public RemoteChanges Changes(string cursor)
        {
            var changes = new RemoteChanges { Complete = true };
            var list = agent.Call("notes.list", Json.O("account", account)) as object[] ?? new object[0];
            foreach (var note in list.OfType<Dictionary<string, object>>()) changes.Items.Add(Item(note));
            return changes;
        }

        static RemoteItem Item(Dictionary<string, object> note)
        {
            var fields = Json.Obj(note, "fields");
            if (fields == null)
            {
                // Before the agent sent `fields`: Outlook's note body is the subject line, then the text.
                var subject = Json.Str(note, "subject") ?? "";
                var body = Json.Str(note, "body") ?? "";
                fields = Json.O("Body", body.Length > 0 ? subject + "\n" + body : subject);
            }
            return new RemoteItem { Href = Json.Str(note, "id"), Etag = Json.Str(note, "modified"), Class = ItemClass.Note, Fields = fields };
        }

        public RemoteItem Get(string href)
        {
            return Changes(null).Items.FirstOrDefault(i => i.Href == href);
        }

        public CreateResult Create(ItemClass cls, Dictionary<string, object> fields, string uid)
        {
            var p = Split(fields);
            var answer = agent.Call("notes.put", p) as Dictionary<string, object>;
            return new CreateResult { Href = Json.Str(answer, "id"), Uid = Json.Str(answer, "id") };
        }

        public void Patch(string href, string etag, Dictionary<string, object> changes, Dictionary<string, object> whole)
        {
            var p = Split(whole);
            p["id"] = href;
            agent.Call("notes.put", p);
        }

        public void Delete(string href, string etag)
        {
            agent.Call("notes.delete", Json.O("account", account, "id", href));
        }

        public Tuple<string, byte[]> Photo(string href) { return null; }

        // notes.put takes the subject (the first line) and the text after it.
        Dictionary<string, object> Split(Dictionary<string, object> fields)
        {
            var text = (Json.Str(fields, "Body") ?? "").Replace("\r\n", "\n");
            int nl = text.IndexOf('\n');
            var subject = nl < 0 ? text : text.Substring(0, nl);
            var body = nl < 0 ? "" : text.Substring(nl + 1);
            return Json.O("account", account, "subject", subject, "body", body);
        }
    }
}
