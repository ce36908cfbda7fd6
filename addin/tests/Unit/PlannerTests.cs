// The plan as a pure function: one scenario per rule, no Outlook and no agent.
using System;
using System.Collections.Generic;
using System.Linq;
using NUnit.Framework;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Tests
{
    [TestFixture]
    public class PlannerTests
    {
        static readonly DateTime T0 = new DateTime(2026, 12, 1, 8, 0, 0);

        static Dictionary<string, object> F(string subject) { return Json.O("Subject", subject, "Start", "2026-12-02T09:00:00"); }

        static LocalItem Local(string id, DateTime modified, Dictionary<string, object> fields = null, string href = null)
        {
            return new LocalItem { EntryId = id, Modified = modified, Class = ItemClass.Appointment, Fields = fields, Link = new Link { Href = href } };
        }

        static RemoteItem Remote(string href, string etag, Dictionary<string, object> fields)
        {
            return new RemoteItem { Href = href, Etag = etag, Class = ItemClass.Appointment, Fields = fields };
        }

        static FolderState Linked(string id, string href, string etag, DateTime modified, Dictionary<string, object> fields)
        {
            var s = new FolderState();
            s.Entries[id] = new Entry { EntryId = id, Href = href, Etag = etag, Modified = modified, Fields = fields };
            return s;
        }

        static Plan Run(List<LocalItem> scan, RemoteChanges changes, FolderState state, bool held = false)
        {
            return Planner.Plan(new PlanInput { Scan = scan, Changes = changes ?? new RemoteChanges(), State = state ?? new FolderState(), Held = held,
                NewUid = () => "uid-new" });
        }

        [Test]
        public void A_new_outlook_item_is_created_at_the_agent_with_a_uid()
        {
            var plan = Run(new List<LocalItem> { Local("E1", T0, F("Lunch")) }, null, null);
            Assert.AreEqual(1, plan.Actions.Count);
            Assert.AreEqual(ActionKind.CreateRemote, plan.Actions[0].Kind);
            Assert.AreEqual("uid-new", plan.Actions[0].Uid);
            Assert.AreEqual("Lunch", plan.Actions[0].Fields["Subject"]);
        }

        [Test]
        public void Only_items_whose_time_moved_are_read()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var scan = new List<LocalItem> { Local("E1", T0), Local("E2", T0), Local("E3", T0.AddSeconds(5)) };
            state.Entries["E3"] = new Entry { EntryId = "E3", Href = "/c/3.ics", Modified = T0 };
            CollectionAssert.AreEquivalent(new[] { "E2", "E3" }, Planner.NeedsFields(scan, state));
        }

        [Test]
        public void A_bumped_modification_time_with_the_same_fields_is_not_pushed()
        {
            // A dismissed reminder, a colour, our own save: LastModificationTime moved, fields did not.
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var plan = Run(new List<LocalItem> { Local("E1", T0.AddMinutes(1), F("Lunch")) }, null, state);
            Assert.AreEqual(0, plan.Count(ActionKind.PatchRemote));
            Assert.AreEqual(1, plan.Count(ActionKind.Record));
            Assert.AreEqual(T0.AddMinutes(1), plan.Actions[0].Modified);
        }

        [Test]
        public void A_local_edit_sends_only_the_changed_fields_with_the_etag_it_was_handed()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, Json.O("Subject", "Lunch", "Location", "Canteen"));
            var plan = Run(new List<LocalItem> { Local("E1", T0.AddMinutes(1), Json.O("Subject", "Lunch with Bob")) }, null, state);
            var patch = plan.Actions.Single();
            Assert.AreEqual(ActionKind.PatchRemote, patch.Kind);
            Assert.AreEqual("\"1\"", patch.Etag);
            Assert.AreEqual("Lunch with Bob", patch.Fields["Subject"]);
            Assert.IsTrue(patch.Fields.ContainsKey("Location") && patch.Fields["Location"] == null, "a cleared field is sent as null");
            Assert.AreEqual(2, patch.Fields.Count);
        }

        [Test]
        public void A_change_at_the_agent_is_applied_in_outlook()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var changes = new RemoteChanges { Items = { Remote("/c/1.ics", "\"2\"", F("Dinner")) } };
            var plan = Run(new List<LocalItem> { Local("E1", T0) }, changes, state);
            Assert.AreEqual(ActionKind.UpdateLocal, plan.Actions.Single().Kind);
        }

        [Test]
        public void A_change_on_both_sides_goes_to_the_agent_with_the_old_etag()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var changes = new RemoteChanges { Items = { Remote("/c/1.ics", "\"2\"", F("Dinner")) } };
            var plan = Run(new List<LocalItem> { Local("E1", T0.AddMinutes(1), F("Brunch")) }, changes, state);
            var a = plan.Actions.Single();
            Assert.AreEqual(ActionKind.PatchRemote, a.Kind, "the add-in does not decide: the agent's conflict machinery does");
            Assert.IsTrue(a.BothChanged);
            Assert.AreEqual("\"1\"", a.Etag, "the etag the add-in was handed, so the server answers 412");
        }

        [Test]
        public void The_echo_of_our_own_write_only_updates_the_etag()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var changes = new RemoteChanges { Items = { Remote("/c/1.ics", "\"2\"", F("Lunch")) } };
            var plan = Run(new List<LocalItem> { Local("E1", T0) }, changes, state);
            var a = plan.Actions.Single();
            Assert.AreEqual(ActionKind.Record, a.Kind);
            Assert.AreEqual("\"2\"", a.Etag);
        }

        [Test]
        public void An_item_removed_at_the_agent_is_deleted_in_outlook_unless_the_agent_holds_the_collection()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var changes = new RemoteChanges { Removed = { "/c/1.ics" } };
            Assert.AreEqual(ActionKind.DeleteLocal, Run(new List<LocalItem> { Local("E1", T0) }, changes, state).Actions.Single().Kind);
            var held = Run(new List<LocalItem> { Local("E1", T0) }, changes, state, held: true);
            Assert.AreEqual(0, held.Actions.Count, "mass deletion held by the agent: kept in Outlook too");
        }

        [Test]
        public void An_item_removed_at_the_agent_but_edited_in_outlook_is_sent_again()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var changes = new RemoteChanges { Removed = { "/c/1.ics" } };
            var plan = Run(new List<LocalItem> { Local("E1", T0.AddMinutes(1), F("Lunch, moved")) }, changes, state);
            Assert.AreEqual(ActionKind.CreateRemote, plan.Actions.Single().Kind, "nothing the user wrote is discarded");
        }

        [Test]
        public void An_item_deleted_in_outlook_is_deleted_at_the_agent_with_its_etag()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var a = Run(new List<LocalItem>(), null, state).Actions.Single();
            Assert.AreEqual(ActionKind.DeleteRemote, a.Kind);
            Assert.AreEqual("\"1\"", a.Etag);
        }

        [Test]
        public void A_folder_that_loses_most_of_its_items_at_once_is_not_mirrored()
        {
            var state = new FolderState();
            for (int i = 0; i < 40; i++) state.Entries["E" + i] = new Entry { EntryId = "E" + i, Href = "/c/" + i + ".ics", Etag = "\"1\"", Modified = T0 };
            var scan = Enumerable.Range(0, 5).Select(i => Local("E" + i, T0)).ToList();
            var plan = Run(scan, null, state);
            Assert.AreEqual(0, plan.Count(ActionKind.DeleteRemote));
            StringAssert.Contains("held", string.Join("\n", plan.Notes));
        }

        [Test]
        public void A_lost_state_file_is_rebuilt_from_the_links_on_the_items()
        {
            var fields = F("Lunch");
            var local = Local("E1", T0, fields, "/c/1.ics");
            local.Link.Etag = "\"1\"";
            local.Link.Hash = FieldSets.Hash(fields);
            var plan = Run(new List<LocalItem> { local }, new RemoteChanges { Complete = true, Items = { Remote("/c/1.ics", "\"1\"", fields) } }, null);
            Assert.AreEqual(ActionKind.Record, plan.Actions.Single().Kind, "no duplicate, no push: the link and its hash say nothing changed");
        }

        [Test]
        public void A_create_whose_answer_was_lost_is_linked_not_repeated()
        {
            var local = Local("E1", T0, F("Lunch"));
            local.Link.PendingUid = "uid-7";
            var remote = Remote("/c/uid-7.ics", "\"1\"", Json.O("Subject", "Lunch", "Start", "2026-12-02T09:00:00", "GlobalUid", "uid-7"));
            var plan = Run(new List<LocalItem> { local }, new RemoteChanges { Complete = true, Items = { remote } }, null);
            Assert.AreEqual(ActionKind.LinkLocal, plan.Actions.Single().Kind);
            Assert.AreEqual(0, plan.Count(ActionKind.CreateLocal) + plan.Count(ActionKind.CreateRemote));
        }

        [Test]
        public void A_new_agent_item_becomes_an_outlook_item_and_unreadable_ones_are_skipped()
        {
            var changes = new RemoteChanges { Items = { Remote("/c/1.ics", "\"1\"", F("Lunch")),
                new RemoteItem { Href = "/c/bad.ics", Etag = "\"1\"", Class = ItemClass.Appointment, Error = "no DTSTART" } } };
            var plan = Run(new List<LocalItem>(), changes, null);
            Assert.AreEqual(ActionKind.CreateLocal, plan.Actions.Single().Kind);
        }

        [Test]
        public void A_read_only_collection_pushes_nothing()
        {
            var state = Linked("E1", "/c/1.ics", "\"1\"", T0, F("Lunch"));
            var plan = Planner.Plan(new PlanInput { Scan = { Local("E1", T0.AddMinutes(1), F("Mine")), Local("E2", T0, F("New")) }, State = state, ReadOnly = true });
            Assert.AreEqual(0, plan.Count(ActionKind.PatchRemote) + plan.Count(ActionKind.CreateRemote) + plan.Count(ActionKind.DeleteRemote));
        }

        [Test]
        public void A_patch_never_drops_list_members_outlook_cannot_show()
        {
            var from = Json.O("Members", new object[] { Json.O("Name", "Bob", "Address", "bob@x", "Uid", "bob"), Json.O("Name", "Nobody", "Uid", "n1") });
            var to = new object[] { Json.O("Name", "Bob", "Address", "bob@x"), Json.O("Address", "carol@x") };
            var merged = FieldSets.MergeMembers(from, to).Cast<Dictionary<string, object>>().ToList();
            Assert.AreEqual(3, merged.Count);
            Assert.AreEqual("bob", merged[0]["Uid"]);
            Assert.AreEqual("n1", merged[2]["Uid"]);
        }
    }
}
